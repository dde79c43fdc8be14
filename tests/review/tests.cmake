# The review web app's tests (included from the root CMakeLists.txt). The plain HTTP tests of
# the server are tests/cli/review_*.sh (found with the other CLI tests); the browser tests
# (puppeteer-core driving Debian's chromium) are registered below by their author.

# Browser tests: tests/review/NAME.test.mjs, each one `kiln review` driven in Debian's chromium by
# puppeteer-core (the browser is never downloaded: PUPPETEER_SKIP_DOWNLOAD). One setup test
# installs the packages from the lock file, so tests running in parallel never race on
# tests/review/node_modules.
find_program(KILN_NODE node)
if(KILN_NODE)
  add_test(NAME review/npm COMMAND sh -c
    "[ -d node_modules/puppeteer-core ] || PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund"
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}/tests/review)
  set_tests_properties(review/npm PROPERTIES FIXTURES_SETUP review_npm)
  file(GLOB KILN_REVIEW_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/review/*.test.mjs)
  foreach(script ${KILN_REVIEW_TESTS})
    get_filename_component(name ${script} NAME)
    string(REGEX REPLACE "\\.test\\.mjs$" "" name ${name})
    add_test(NAME review/${name} COMMAND ${KILN_NODE} ${script})
    set_tests_properties(review/${name} PROPERTIES FIXTURES_REQUIRED review_npm TIMEOUT 600
      ENVIRONMENT "KILN=$<TARGET_FILE:kiln-cli>;KILN_SRC=${CMAKE_SOURCE_DIR};KILN_TMP=${CMAKE_BINARY_DIR}/testtmp;PUPPETEER_SKIP_DOWNLOAD=1")
  endforeach()
endif()
