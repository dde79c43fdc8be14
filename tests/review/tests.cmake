# The review web app's tests (included from the root CMakeLists.txt). The plain HTTP tests of
# the server are tests/cli/review_*.sh (found with the other CLI tests); the browser tests
# (puppeteer-core driving Debian's chromium) are registered below by their author.
