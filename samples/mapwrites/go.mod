module gort.example/mapwrites

go 1.21
