module gort.example/unlocked_path

go 1.21
