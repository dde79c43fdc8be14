mkdir -p controlnet
printf 'not checked at plan' >controlnet/crown.png
