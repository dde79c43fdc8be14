# a release folder whose ipfs.json has an entry without path or cid, and no manifest or
# provenance.json: two problems are found before the malformed record stops verify (their
# strings leaked; LeakSanitizer prints them in the ASan build without changing the exit status,
# so tests/cli/qa_hostile.sh checks its stderr)
mkdir -p rel/images
printf x >rel/images/1.png
printf '{"entries":[{"name":"images"}]}\n' >rel/ipfs.json
