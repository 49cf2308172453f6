module gort.example/locked_writes

go 1.21
