# Compiler flags shared by every target. Warnings are errors.
set(MR_WARNINGS
  -Wall -Wextra -Wshadow -Wformat=2 -Wformat-security -Wimplicit-fallthrough
  -Wstrict-prototypes -Wmissing-prototypes -Wpointer-arith -Wcast-qual
  -Wundef -Wvla -Wnull-dereference -Werror)
add_compile_options(${MR_WARNINGS})
add_compile_options(-fstack-protector-strong -fno-common
  "-ffile-prefix-map=${CMAKE_SOURCE_DIR}/=" "-ffile-prefix-map=${CMAKE_BINARY_DIR}/=build/")
add_compile_definitions(_GNU_SOURCE)

if(CMAKE_C_COMPILER_ID STREQUAL "GNU")
  add_compile_options(-ftrivial-auto-var-init=zero)
endif()

if(NOT MR_SANITIZE AND NOT MR_FUZZ)
  # _FORTIFY_SOURCE needs optimisation and conflicts with the sanitizers' interceptors.
  add_compile_definitions(_FORTIFY_SOURCE=2)
endif()

if(MR_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined -fno-sanitize-recover=all)
  add_compile_definitions(MR_SANITIZED=1)
endif()

if(MR_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "MR_FUZZ needs clang (CC=clang)")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
  add_compile_definitions(MR_SANITIZED=1 MR_FUZZING=1)
endif()

# Only libraries that a binary really uses end up in its DT_NEEDED list (every loaded library
# is trusted code in an enclave; see tests/e2e/test_linkage.py).
add_link_options(-Wl,--as-needed)

# Reproducible output: no build timestamps anywhere; archives without dates.
set(CMAKE_C_ARCHIVE_CREATE "<CMAKE_AR> qcD <TARGET> <LINK_FLAGS> <OBJECTS>")
set(CMAKE_C_ARCHIVE_APPEND "<CMAKE_AR> qD <TARGET> <LINK_FLAGS> <OBJECTS>")
set(CMAKE_C_ARCHIVE_FINISH "<CMAKE_RANLIB> -D <TARGET>")

# Libraries hide everything that is not explicitly exported with MR_API.
set(CMAKE_C_VISIBILITY_PRESET hidden)
