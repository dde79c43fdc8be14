mkdir -p layers/Body layers/Hat
touch layers/Body/plain.png layers/Body/gold.png layers/Hat/cap.png layers/Hat/crown.png
{ printf 'layers: ['; yes '0,' | head -n 8000000 | tr -d '\n'; printf '0]\n'; } > kiln.yaml
