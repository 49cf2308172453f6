module gort.example/mapcount

go 1.21
