# libFuzzer targets (fuzz/fuzz_*.c), built with clang when it is installed:
#   fuzz_sanitize   the PII sanitizer on arbitrary bytes (text and JSON), with an
#                   oracle: no entity its own pattern matches at a boundary
#                   survives; fuzz/sanitize.dict holds its tokens
#   fuzz_jsonl      a JSON line -> validated, sanitized event -> back
#   fuzz_serve      serve's request bodies: bounded gzip inflate, then the
#                   split into items (JSON array, one value, NDJSON)
#   fuzz_otlp       the OTLP decoders (protobuf, JSON) and the GenAI span
#                   mapping (its events must read back as events)
#   fuzz_langfuse   the Langfuse batch decoder (Lua) in a Lua state holding
#                   only its bundled modules: every body answered (207/400,
#                   each item once), a retried batch changes nothing
#   fuzz_fromjson   _core.from_json, the feedback routes' body decoder: a
#                   value or a message, and whatever jansson reads it reads
#                   too, as the same types
# Each links the C sources it needs directly, compiled with
# -fsanitize=fuzzer,address,undefined. Tests:
#   fuzz.<name>.seeds   every build: replays fuzz/seeds/<name> once
#   fuzz.<name>         the sanitizer build (CF_SANITIZE=ON, scripts/test's
#                       second pass): fuzzes for CF_FUZZ_SECONDS (30) seconds;
#                       CI's time bound keeps it short, a longer session
#                       passes -DCF_FUZZ_SECONDS=600
# All are labelled "fuzz" (ctest -L fuzz / -LE fuzz).
find_program(CF_CLANG NAMES clang clang-16 clang-15 clang-14)
set(CF_FUZZ_SECONDS 30 CACHE STRING "seconds each fuzz target runs in the sanitizer build")
if(NOT CF_CLANG)
  message(STATUS "clang not found: fuzz targets not built (install the Debian package 'clang')")
  return()
endif()
execute_process(COMMAND pkg-config --cflags libpcre2-8 jansson libcrypto zlib libprotobuf-c
                OUTPUT_VARIABLE CF_FUZZ_CFLAGS OUTPUT_STRIP_TRAILING_WHITESPACE)
execute_process(COMMAND pkg-config --libs libpcre2-8 jansson libcrypto zlib libprotobuf-c
                OUTPUT_VARIABLE CF_FUZZ_LIBS OUTPUT_STRIP_TRAILING_WHITESPACE)
separate_arguments(CF_FUZZ_CFLAGS)
separate_arguments(CF_FUZZ_LIBS)
set(CF_FUZZ_SOURCES
  src/core/cf_buf.c src/core/cf_common.c src/core/cf_uuid.c
  src/ingest/cf_hmac.c src/ingest/cf_json_compact.c src/ingest/cf_jsonl.c src/ingest/cf_record.c
  src/ingest/cf_validate.c
  src/sanitize/cf_pii_check.c src/sanitize/cf_sanitize.c src/sanitize/cf_sanitize_json.c
  src/serve/cf_serve_body.c src/serve/cf_serve_split.c)
list(TRANSFORM CF_FUZZ_SOURCES PREPEND ${PROJECT_SOURCE_DIR}/)
# fuzz_otlp adds the otlp room (less its route) and the protoc-c output
set(CF_FUZZ_EXTRA_otlp
  src/otlp/cf_otlp_arena.c src/otlp/cf_otlp_attr.c src/otlp/cf_otlp_decode.c
  src/otlp/cf_otlp_depth.c src/otlp/cf_otlp_json.c src/otlp/cf_otlp_json_any.c
  src/otlp/cf_otlp_map.c src/otlp/cf_otlp_msgs.c src/otlp/cf_otlp_jmsgs.c
  src/otlp/cf_otlp_amsgs.c src/otlp/cf_otlp_lf.c src/otlp/cf_otlp_jvalid.c
  src/otlp/cf_otlp_eval.c)
list(TRANSFORM CF_FUZZ_EXTRA_otlp PREPEND ${PROJECT_SOURCE_DIR}/)
# rebuilt when one of its own sources changes, not only the shared ones
set(CF_FUZZ_DEPS_otlp ${CF_FUZZ_EXTRA_otlp})
list(APPEND CF_FUZZ_EXTRA_otlp ${CF_OTLP_PB_SOURCES} -I${CF_OTLP_GEN})
set(CF_FUZZ_DIR ${PROJECT_BINARY_DIR}/fuzz)
file(MAKE_DIRECTORY ${CF_FUZZ_DIR})
# fuzz_langfuse adds its Lua modules (embedded as the binary embeds them),
# Lua and lua-cjson
set(CF_FUZZ_LANGFUSE_LUA
  lua/crucible/serve/items.lua lua/crucible/serve/langfuse.lua
  lua/crucible/serve/langfuse_map.lua lua/crucible/serve/langfuse_upsert.lua)
list(TRANSFORM CF_FUZZ_LANGFUSE_LUA PREPEND ${PROJECT_SOURCE_DIR}/)
set(CF_FUZZ_LANGFUSE_C ${CF_FUZZ_DIR}/fuzz_langfuse_lua.c)
add_custom_command(
  OUTPUT ${CF_FUZZ_LANGFUSE_C}
  COMMAND cf_embed_gen ${CF_FUZZ_LANGFUSE_C} ${PROJECT_SOURCE_DIR}/lua ${CF_FUZZ_LANGFUSE_LUA}
  DEPENDS cf_embed_gen ${CF_FUZZ_LANGFUSE_LUA}
  COMMENT "Embedding the Langfuse decoder's Lua modules for fuzz_langfuse"
  VERBATIM)
execute_process(COMMAND pkg-config --cflags lua5.4 OUTPUT_VARIABLE CF_FUZZ_LUA_CFLAGS
                OUTPUT_STRIP_TRAILING_WHITESPACE)
execute_process(COMMAND pkg-config --libs lua5.4 OUTPUT_VARIABLE CF_FUZZ_LUA_LIBS
                OUTPUT_STRIP_TRAILING_WHITESPACE)
separate_arguments(CF_FUZZ_LUA_CFLAGS)
separate_arguments(CF_FUZZ_LUA_LIBS)
set(CF_FUZZ_EXTRA_langfuse ${CF_FUZZ_LUA_CFLAGS} ${CF_FUZZ_LANGFUSE_C} ${CF_CJSON_STATIC}
    ${CF_FUZZ_LUA_LIBS})
set(CF_FUZZ_DEPS_langfuse ${CF_FUZZ_LANGFUSE_C})
# fuzz_fromjson adds the decoder and Lua
set(CF_FUZZ_EXTRA_fromjson ${CF_FUZZ_LUA_CFLAGS} ${PROJECT_SOURCE_DIR}/src/lua/l_fromjson.c
    ${CF_FUZZ_LUA_LIBS})
set(CF_FUZZ_DEPS_fromjson ${PROJECT_SOURCE_DIR}/src/lua/l_fromjson.c)
set(CF_FUZZ_BINARIES)
foreach(name sanitize jsonl serve otlp langfuse fromjson)
  set(bin ${CF_FUZZ_DIR}/fuzz_${name})
  add_custom_command(
    OUTPUT ${bin}
    COMMAND ${CF_CLANG} -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined
            -fno-sanitize-recover=undefined -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE
            -DCF_VERSION="${PROJECT_VERSION}" -I${PROJECT_SOURCE_DIR}/include ${CF_FUZZ_CFLAGS}
            ${PROJECT_SOURCE_DIR}/fuzz/fuzz_${name}.c ${CF_FUZZ_SOURCES} ${CF_FUZZ_EXTRA_${name}}
            -o ${bin}
            ${CF_FUZZ_LIBS} -lpthread -lm
    DEPENDS ${PROJECT_SOURCE_DIR}/fuzz/fuzz_${name}.c ${CF_FUZZ_SOURCES} ${CF_OTLP_PB_SOURCES}
            ${CF_FUZZ_DEPS_${name}}
    COMMENT "Building the fuzz target fuzz_${name} with clang"
    VERBATIM)
  list(APPEND CF_FUZZ_BINARIES ${bin})
  set(seeds ${PROJECT_SOURCE_DIR}/fuzz/seeds/${name})
  # a dictionary of the input's tokens, when the target has one
  set(dict)
  if(EXISTS ${PROJECT_SOURCE_DIR}/fuzz/${name}.dict)
    set(dict -dict=${PROJECT_SOURCE_DIR}/fuzz/${name}.dict)
  endif()
  add_test(NAME fuzz.${name}.seeds COMMAND ${bin} -runs=0 ${seeds})
  set_tests_properties(fuzz.${name}.seeds PROPERTIES LABELS fuzz)
  if(CF_SANITIZE)
    # new inputs go to the first directory (in the build tree), never to the seeds
    file(MAKE_DIRECTORY ${CF_FUZZ_DIR}/corpus_${name})
    add_test(NAME fuzz.${name}
             COMMAND ${bin} -max_total_time=${CF_FUZZ_SECONDS} -timeout=10 -rss_limit_mb=2048
                     -print_final_stats=1 ${dict} ${CF_FUZZ_DIR}/corpus_${name} ${seeds})
    set_tests_properties(fuzz.${name} PROPERTIES LABELS fuzz TIMEOUT 600)
  endif()
endforeach()
add_custom_target(fuzzers ALL DEPENDS ${CF_FUZZ_BINARIES})
add_dependencies(fuzzers cf_otlp_proto)
