mkdir -p layers/Body layers/Hat
touch layers/Body/plain.png layers/Body/gold.png layers/Hat/cap.png layers/Hat/crown.png
{ printf '\000'; printf 'collection: {name: Case, symbol: CASE, size: 4, seed: 7}\n'; } > kiln.yaml
