module gort.example/dangling

go 1.21
