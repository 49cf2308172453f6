module gort.example/mapsoak

go 1.21
