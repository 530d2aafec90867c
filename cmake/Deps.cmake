# Every dependency is a Debian package found through pkg-config. A missing one
# stops the configure step with the name of the package that provides it.
find_package(PkgConfig)
if(NOT PKG_CONFIG_FOUND)
  message(FATAL_ERROR "pkg-config not found: install the Debian package 'pkg-config'")
endif()

# cf_require_pkg(<prefix> <pkg-config module> <debian package>)
function(cf_require_pkg prefix module debian)
  pkg_check_modules(${prefix} QUIET IMPORTED_TARGET ${module})
  if(NOT ${prefix}_FOUND)
    message(FATAL_ERROR
      "missing dependency: pkg-config module '${module}' not found; "
      "install the Debian package '${debian}' (apt-get install ${debian})")
  endif()
  message(STATUS "found ${module} ${${prefix}_VERSION}")
endfunction()

cf_require_pkg(LUA       lua5.4         liblua5.4-dev)
cf_require_pkg(SQLITE    sqlite3        libsqlite3-dev)
cf_require_pkg(PQ        libpq          libpq-dev)
cf_require_pkg(PCRE2     libpcre2-8     libpcre2-dev)
cf_require_pkg(CURL      libcurl        libcurl4-openssl-dev)
cf_require_pkg(OPENSSL   openssl        libssl-dev)
cf_require_pkg(ZSTD      libzstd        libzstd-dev)
cf_require_pkg(JANSSON   jansson        libjansson-dev)
cf_require_pkg(MHD       libmicrohttpd  libmicrohttpd-dev)
cf_require_pkg(EDIT      libedit        libedit-dev)
cf_require_pkg(LUACJSON  lua5.4-cjson   lua-cjson-dev)
cf_require_pkg(ICU       icu-uc         libicu-dev)
cf_require_pkg(ZLIB      zlib           zlib1g-dev)
cf_require_pkg(PROTOBUFC libprotobuf-c  libprotobuf-c-dev)

# protoc-c compiles the OTLP .proto files of src/otlp/proto.
find_program(CF_PROTOC_C NAMES protoc-c)
if(NOT CF_PROTOC_C)
  message(FATAL_ERROR "protoc-c not found: install the Debian package 'protobuf-c-compiler'")
endif()

# lua-cjson is linked statically and preloaded as `cjson`, so the binary does
# not depend on the system's Lua module path.
find_library(CF_CJSON_STATIC NAMES liblua5.4-cjson.a
             HINTS ${LUACJSON_LIBRARY_DIRS} /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE})
if(NOT CF_CJSON_STATIC)
  message(FATAL_ERROR "liblua5.4-cjson.a not found: install the Debian package 'lua-cjson-dev'")
endif()

find_package(Threads REQUIRED)

set(CF_DEP_TARGETS
  PkgConfig::LUA PkgConfig::SQLITE PkgConfig::PQ PkgConfig::PCRE2 PkgConfig::CURL
  PkgConfig::OPENSSL PkgConfig::ZSTD PkgConfig::JANSSON PkgConfig::MHD
  PkgConfig::EDIT PkgConfig::ICU PkgConfig::ZLIB PkgConfig::PROTOBUFC ${CF_CJSON_STATIC} Threads::Threads m)
