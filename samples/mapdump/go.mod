module gort.example/mapdump

go 1.21
