module gort.example/concurrent_writes

go 1.21
