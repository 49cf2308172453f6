module gort.example/crashkinds

go 1.21
