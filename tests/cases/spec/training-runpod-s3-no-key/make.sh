mkdir -p data/owls data/more
: > data/file.png
