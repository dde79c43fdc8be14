#!/bin/sh
# The Makefile's recipes: a failing compile stops `make build` and `make demo` with a non-zero
# exit and its error shown (no stale binary runs); `make install` puts the built kiln and the
# docs under DESTDIR/PREFIX, and refuses when nothing is built.
. "$(dirname "$0")/lib.sh"
MAKE="make -s -C $KILN_SRC"
# a cmake that configures and then fails to compile, first on PATH (the recipes call `cmake`)
mkdir -p "$T/bin"
cat > "$T/bin/cmake" <<'SH'
#!/bin/sh
case " $* " in
*" --build "*) echo "src/main.c:1:1: error: broken on purpose" >&2; exit 2 ;;
esac
exit 0
SH
chmod +x "$T/bin/cmake"
PATH="$T/bin:$PATH" $MAKE build BUILD="$T/b" DEPS=true >"$T/out" 2>&1
rc=$?
[ $rc != 0 ] && ok || fail "make build with a failing compile exited 0"
expect_contains "the compile error is shown" "$T/out" "error: broken on purpose"
PATH="$T/bin:$PATH" $MAKE demo BUILD="$T/b" DEPS=true >"$T/out" 2>&1
rc=$?
[ $rc != 0 ] && ok || fail "make demo with a failing compile exited 0"
grep -q "== kiln build" "$T/out" && fail "make demo ran the demo after a failed build" || ok

# install: the built binary and the docs, staged
BUILD_DIR=$(dirname "$KILN")
$MAKE install BUILD="$BUILD_DIR" DESTDIR="$T/stage" PREFIX=/usr >"$T/out" 2>&1 ||
	fail "make install failed: $(cat "$T/out")"
[ -x "$T/stage/usr/bin/kiln" ] && ok || fail "no $T/stage/usr/bin/kiln"
"$T/stage/usr/bin/kiln" --version >"$T/v" 2>&1
expect_contains "the installed kiln runs" "$T/v" "kiln "
[ -f "$T/stage/usr/share/doc/kiln/commands/build.md" ] && ok || fail "docs not installed"
$MAKE uninstall DESTDIR="$T/stage" PREFIX=/usr >/dev/null 2>&1
[ ! -e "$T/stage/usr/bin/kiln" ] && ok || fail "make uninstall left bin/kiln"
# nothing built: a clear refusal
$MAKE install BUILD="$T/none" DESTDIR="$T/stage2" >"$T/out" 2>&1 && fail "install without a build exited 0" || ok
expect_contains "install says to build first" "$T/out" "run \`make\` first"
finish
