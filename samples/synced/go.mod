module gort.example/synced

go 1.21
