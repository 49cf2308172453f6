module gort.example/wbstores

go 1.21
