# Registers every test with CTest:
#   tests/c/test_*.c        one executable per C module
#   tests/lua/*_spec.lua    busted specs, run inside the real runtime
#   tests/cli/*.t           CLI transcripts (commands, output, exit status)
#   lint                    luacheck, banned C functions, file sizes, function lengths
set(CF_TEST_WORK ${PROJECT_BINARY_DIR}/testwork)
set(CF_TEST_ENV
  "CF_SOURCE_DIR=${PROJECT_SOURCE_DIR}"
  "CF_BINARY=$<TARGET_FILE:crucible-feedback>"
  "CF_BUILD_DIR=${PROJECT_BINARY_DIR}"
  "CRUCIBLE_CONFIG="
  "DATABASE_URL="
  "CRUCIBLE_PATH=")

file(GLOB CF_C_TESTS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/c/test_*.c)
foreach(src ${CF_C_TESTS})
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests/c ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(${name} PRIVATE crucible_core)
  file(MAKE_DIRECTORY ${CF_TEST_WORK}/c.${name})
  add_test(NAME c.${name} COMMAND ${name} WORKING_DIRECTORY ${CF_TEST_WORK}/c.${name})
  set_tests_properties(c.${name} PROPERTIES ENVIRONMENT "${CF_TEST_ENV}")
endforeach()

find_program(CF_BUSTED busted)
if(NOT CF_BUSTED)
  message(FATAL_ERROR "busted not found: install the Debian package 'lua-busted'")
endif()
file(GLOB CF_LUA_SPECS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/lua/*_spec.lua)
# The storage conformance suite, the lease race, the export race, bulk ingestion's
# resume after SIGKILL and the scores suite run once per backend (below), not here.
list(REMOVE_ITEM CF_LUA_SPECS ${PROJECT_SOURCE_DIR}/tests/lua/store_conformance_spec.lua
     ${PROJECT_SOURCE_DIR}/tests/lua/store_lease_spec.lua
     ${PROJECT_SOURCE_DIR}/tests/lua/store_export_race_spec.lua
     ${PROJECT_SOURCE_DIR}/tests/lua/store_resume_spec.lua
     ${PROJECT_SOURCE_DIR}/tests/lua/store_scores_spec.lua
     ${PROJECT_SOURCE_DIR}/tests/lua/store_lifecycle_spec.lua
     ${PROJECT_SOURCE_DIR}/tests/lua/store_counts_spec.lua
     ${PROJECT_SOURCE_DIR}/tests/lua/serve_shared_spec.lua
     ${PROJECT_SOURCE_DIR}/tests/lua/serve_langfuse_pg_spec.lua)
foreach(spec ${CF_LUA_SPECS})
  get_filename_component(name ${spec} NAME_WE)
  file(MAKE_DIRECTORY ${CF_TEST_WORK}/lua.${name})
  add_test(NAME lua.${name}
           COMMAND ${CF_BUSTED} --lua=$<TARGET_FILE:crucible-feedback>
                   --helper=${PROJECT_SOURCE_DIR}/tests/lua/helper.lua ${spec}
           WORKING_DIRECTORY ${CF_TEST_WORK}/lua.${name})
  set_tests_properties(lua.${name} PROPERTIES ENVIRONMENT "${CF_TEST_ENV}")
endforeach()

file(GLOB CF_CLI_TESTS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/cli/*.t)
foreach(t ${CF_CLI_TESTS})
  get_filename_component(name ${t} NAME_WE)
  file(MAKE_DIRECTORY ${CF_TEST_WORK}/cli.${name})
  add_test(NAME cli.${name}
           COMMAND crucible-feedback ${PROJECT_SOURCE_DIR}/tests/cli/transcript.lua ${t}
           WORKING_DIRECTORY ${CF_TEST_WORK}/cli.${name})
  set_tests_properties(cli.${name} PROPERTIES ENVIRONMENT "${CF_TEST_ENV}")
endforeach()

find_program(CF_LUACHECK luacheck)
if(NOT CF_LUACHECK)
  message(FATAL_ERROR "luacheck not found: install the Debian package 'lua-check'")
endif()
add_test(NAME lint.luacheck
         COMMAND ${CF_LUACHECK} --no-color -q lua scripts examples tests/lua tests/cli tests/lint bench
         WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
add_test(NAME lint.c_rules
         COMMAND sh ${PROJECT_SOURCE_DIR}/tests/lint/c_rules.sh ${PROJECT_SOURCE_DIR})
# Every relative link (and #anchor) of README.md and docs/**/*.md resolves
# inside the repository; the self-check proves the checker finds the broken
# links of a fixture.
add_test(NAME lint.links
         COMMAND crucible-feedback ${PROJECT_SOURCE_DIR}/tests/lint/links.lua ${PROJECT_SOURCE_DIR})
add_test(NAME lint.links.selfcheck
         COMMAND crucible-feedback ${PROJECT_SOURCE_DIR}/tests/lint/links.lua
                 --expect ${PROJECT_SOURCE_DIR}/tests/lint/links_fixture/expected.txt
                 ${PROJECT_SOURCE_DIR}/tests/lint/links_fixture)
set_tests_properties(lint.links lint.links.selfcheck PROPERTIES ENVIRONMENT "${CF_TEST_ENV}")
# No function over 80 lines, C or Lua (known offenders: tests/lint/fn_length.allow);
# the self-test checks the checker on generated 80- and 81-line functions.
add_test(NAME lint.fn_length
         COMMAND sh ${PROJECT_SOURCE_DIR}/tests/lint/fn_length.sh ${PROJECT_SOURCE_DIR})
add_test(NAME lint.fn_length.selftest
         COMMAND sh ${PROJECT_SOURCE_DIR}/tests/lint/fn_length_selftest.sh ${PROJECT_SOURCE_DIR})

# Memory bound (not a timing): streaming 200,000 stored 1 KB events through
# the cursor keeps peak RSS under 64 MB.
file(MAKE_DIRECTORY ${CF_TEST_WORK}/bench.cursor_rss)
add_test(NAME bench.cursor_rss_bound
         COMMAND crucible-feedback ${PROJECT_SOURCE_DIR}/bench/cursor_rss.lua
                 --events 200000 --max-rss-mb 64 --db cursor.db
         WORKING_DIRECTORY ${CF_TEST_WORK}/bench.cursor_rss)
set_tests_properties(bench.cursor_rss_bound PROPERTIES ENVIRONMENT "${CF_TEST_ENV}")

# Memory bound (not a timing): a Parquet export of 150,000 stored 1 KB curated
# examples (two row groups, database read and marking included) keeps peak
# RSS under 100 MB.
file(MAKE_DIRECTORY ${CF_TEST_WORK}/bench.export_rss)
add_test(NAME bench.export_rss_bound
         COMMAND crucible-feedback ${PROJECT_SOURCE_DIR}/bench/export.lua
                 --rows 150000 --format parquet --out export.parquet --max-rss-mb 100 --db export.db
         WORKING_DIRECTORY ${CF_TEST_WORK}/bench.export_rss)
set_tests_properties(bench.export_rss_bound PROPERTIES ENVIRONMENT "${CF_TEST_ENV}")

# The storage conformance suite (store.conformance.BACKEND), the
# workflow lease race (store.lease.BACKEND) and the concurrent export race
# (store.export_race.BACKEND) and a bulk ingest killed with SIGKILL then run
# again (store.resume.BACKEND), once per backend: SQLite on a
# temporary file; PostgreSQL and ClickHouse against a server on loopback that
# tests/servers/with-server.sh starts (unless scripts/test already did:
# CF_PG_URL / CF_CH_URL) and stops. A backend whose server script exists
# is registered; a missing server binary then fails the test.
foreach(suite conformance lease export_race resume scores lifecycle counts)
set(CF_CONFORMANCE_CMD ${CF_BUSTED} --lua=$<TARGET_FILE:crucible-feedback>
    --helper=${PROJECT_SOURCE_DIR}/tests/lua/helper.lua
    ${PROJECT_SOURCE_DIR}/tests/lua/store_${suite}_spec.lua)
foreach(backend sqlite postgres clickhouse)
  if(backend STREQUAL "postgres")
    set(script ${PROJECT_SOURCE_DIR}/scripts/lib/pg.sh)
  elseif(backend STREQUAL "clickhouse")
    set(script ${PROJECT_SOURCE_DIR}/scripts/lib/clickhouse.sh)
  else()
    set(script "")
  endif()
  if(script AND NOT EXISTS ${script})
    continue()
  endif()
  # the maintained event counts are SQLite's and PostgreSQL's (ClickHouse counts columns)
  if(suite STREQUAL "counts" AND backend STREQUAL "clickhouse")
    continue()
  endif()
  file(MAKE_DIRECTORY ${CF_TEST_WORK}/store.${suite}.${backend})
  if(script)
    set(cmd bash ${PROJECT_SOURCE_DIR}/tests/servers/with-server.sh ${backend} ${CF_CONFORMANCE_CMD})
  else()
    set(cmd ${CF_CONFORMANCE_CMD})
  endif()
  add_test(NAME store.${suite}.${backend} COMMAND ${cmd}
           WORKING_DIRECTORY ${CF_TEST_WORK}/store.${suite}.${backend})
  # RESOURCE_LOCK: the conformance suite stops and restarts the server that
  # scripts/test shares between the two suites; the race must not see that.
  set_tests_properties(store.${suite}.${backend} PROPERTIES ENVIRONMENT "${CF_TEST_ENV}"
                       TIMEOUT 900 RESOURCE_LOCK store.server.${backend})
endforeach()
endforeach()

# Two `serve` processes sharing one PostgreSQL database (serve.shared.postgres):
# the server is started for the test (or scripts/test's is used); a missing
# server binary fails the test, it never skips.
if(EXISTS ${PROJECT_SOURCE_DIR}/scripts/lib/pg.sh)
  file(MAKE_DIRECTORY ${CF_TEST_WORK}/serve.shared.postgres)
  add_test(NAME serve.shared.postgres
           COMMAND bash ${PROJECT_SOURCE_DIR}/tests/servers/with-server.sh postgres
                   ${CF_BUSTED} --lua=$<TARGET_FILE:crucible-feedback>
                   --helper=${PROJECT_SOURCE_DIR}/tests/lua/helper.lua
                   ${PROJECT_SOURCE_DIR}/tests/lua/serve_shared_spec.lua
           WORKING_DIRECTORY ${CF_TEST_WORK}/serve.shared.postgres)
  set_tests_properties(serve.shared.postgres PROPERTIES ENVIRONMENT "${CF_TEST_ENV}"
                       TIMEOUT 600 RESOURCE_LOCK store.server.postgres)
  # Langfuse updates in a later batch completing the stored event (serve.langfuse.postgres)
  file(MAKE_DIRECTORY ${CF_TEST_WORK}/serve.langfuse.postgres)
  add_test(NAME serve.langfuse.postgres
           COMMAND bash ${PROJECT_SOURCE_DIR}/tests/servers/with-server.sh postgres
                   ${CF_BUSTED} --lua=$<TARGET_FILE:crucible-feedback>
                   --helper=${PROJECT_SOURCE_DIR}/tests/lua/helper.lua
                   ${PROJECT_SOURCE_DIR}/tests/lua/serve_langfuse_pg_spec.lua
           WORKING_DIRECTORY ${CF_TEST_WORK}/serve.langfuse.postgres)
  set_tests_properties(serve.langfuse.postgres PROPERTIES ENVIRONMENT "${CF_TEST_ENV}"
                       TIMEOUT 600 RESOURCE_LOCK store.server.postgres)
  # OTLP evaluations looked up in the store after a restart or past the join's memory
  file(MAKE_DIRECTORY ${CF_TEST_WORK}/serve.otlp_eval.postgres)
  add_test(NAME serve.otlp_eval.postgres
           COMMAND bash ${PROJECT_SOURCE_DIR}/tests/servers/with-server.sh postgres
                   ${CF_BUSTED} --lua=$<TARGET_FILE:crucible-feedback>
                   --helper=${PROJECT_SOURCE_DIR}/tests/lua/helper.lua
                   ${PROJECT_SOURCE_DIR}/tests/lua/otlp_eval_store_spec.lua
           WORKING_DIRECTORY ${CF_TEST_WORK}/serve.otlp_eval.postgres)
  set_tests_properties(serve.otlp_eval.postgres PROPERTIES ENVIRONMENT "${CF_TEST_ENV}"
                       TIMEOUT 600 RESOURCE_LOCK store.server.postgres)
endif()
