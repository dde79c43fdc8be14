# a release folder whose provenance.json has an image entry without sha256, and no manifest:
# the problems found before the malformed record must be freed (tests/cli/qa_hostile.sh checks
# stderr for LeakSanitizer in the ASan build)
mkdir -p rel/images
printf x >rel/images/1.png
printf '{"provenance_hash":"%064d","images":[{"file":"images/1.png"}]}\n' 0 >rel/provenance.json
