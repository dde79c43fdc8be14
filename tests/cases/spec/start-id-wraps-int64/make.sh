mkdir -p layers/Body layers/Hat
touch layers/Body/plain.png layers/Body/gold.png layers/Hat/cap.png layers/Hat/crown.png
