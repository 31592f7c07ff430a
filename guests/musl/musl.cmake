# guests/musl/musl.cmake — static Linux programs built with musl-gcc -static, unmodified, that run
# as Aspen jobs through vm/linux.c (docs/ABI.md section 12): zlib's minigzip (guests/musl/minigzip),
# the seed's echo guest as a plain libc program (musl-echo-worker), and the VM tests' Linux guests (tests/vm/linux/lx-*.c -> test-lx-*). Included by
# guests/CMakeLists.txt; outputs join ASPEN_GUEST_OUTPUTS.
find_program(ASPEN_MUSL_GCC musl-gcc)
if(NOT ASPEN_MUSL_GCC)
  message(WARNING "musl-gcc not found: the static Linux guests (guests/musl/) are not built and "
                  "their tests will fail. Run scripts/setup.sh (musl-tools).")
  return()
endif()

# aspen_musl_guest(OUTPUT_NAME SOURCES... [LIBS libs...] [FLAGS flags...])
function(aspen_musl_guest out_name)
  cmake_parse_arguments(G "" "" "LIBS;FLAGS" ${ARGN})
  set(out ${ASPEN_GUEST_DIR}/${out_name})
  add_custom_command(
    OUTPUT ${out}
    COMMAND ${ASPEN_MUSL_GCC} -static -O2 -Wall ${G_FLAGS} -idirafter /usr/include ${G_UNPARSED_ARGUMENTS}
            ${G_LIBS} -o ${out}
    DEPENDS ${G_UNPARSED_ARGUMENTS}
    COMMENT "Building static Linux guest ${out_name} (musl-gcc -static)"
    VERBATIM)
  set(ASPEN_GUEST_OUTPUTS ${ASPEN_GUEST_OUTPUTS} ${out} PARENT_SCOPE)
endfunction()

set(ASPEN_LIBZ_A /usr/lib/x86_64-linux-gnu/libz.a)
if(EXISTS ${ASPEN_LIBZ_A})
  aspen_musl_guest(minigzip ${CMAKE_CURRENT_SOURCE_DIR}/musl/minigzip/minigzip.c
                   ${CMAKE_CURRENT_SOURCE_DIR}/musl/minigzip/glibc_fortify.c LIBS ${ASPEN_LIBZ_A})
else()
  message(WARNING "${ASPEN_LIBZ_A} not found: minigzip is not built. Run scripts/setup.sh "
                  "(zlib1g-dev).")
endif()
aspen_musl_guest(musl-echo-worker ${CMAKE_CURRENT_SOURCE_DIR}/musl/echo-worker/echo-worker.c
                 FLAGS -Werror -Wextra)
foreach(name lx-probe lx-leak)
  aspen_musl_guest(test-${name} ${CMAKE_SOURCE_DIR}/tests/vm/linux/${name}.c FLAGS -Werror -Wextra)
endforeach()
set(ASPEN_GUEST_OUTPUTS ${ASPEN_GUEST_OUTPUTS} PARENT_SCOPE)
