module gort.example/mapchurn

go 1.21
