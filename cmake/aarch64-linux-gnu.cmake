# Cross-compiling to aarch64 Linux with Debian's g++-aarch64-linux-gnu and arm64 multiarch -dev
# packages (docs/simd.md "aarch64"); the built tests run under qemu-aarch64 (qemu-user), which
# CMake/CTest use as the emulator.
#
# Two dependencies cannot be installed as arm64 multiarch packages beside their amd64 versions:
# libdnnl-dev (dnnl_config.h differs per architecture) and libsentencepiece-dev (not Multi-Arch:
# same; installing it removes the amd64 one). tools/aarch64-deps.sh unpacks their Debian arm64
# packages into EDGELLM_ARM64_DEPS (default build/aarch64-deps) instead; it is searched first.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64)

if(NOT EDGELLM_ARM64_DEPS)
  set(EDGELLM_ARM64_DEPS "${CMAKE_CURRENT_LIST_DIR}/../build/aarch64-deps")
endif()
get_filename_component(EDGELLM_ARM64_DEPS "${EDGELLM_ARM64_DEPS}" ABSOLUTE)
set(_deps_lib "${EDGELLM_ARM64_DEPS}/usr/lib/aarch64-linux-gnu")

set(CMAKE_FIND_ROOT_PATH "${EDGELLM_ARM64_DEPS}" /)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
# The unpacked oneDNN headers (its dnnl_config.h is arm64's) before /usr/include's amd64 ones.
set(CMAKE_CXX_FLAGS_INIT "-I${EDGELLM_ARM64_DEPS}/usr/include")
set(CMAKE_EXE_LINKER_FLAGS_INIT "-L${_deps_lib} -Wl,-rpath,${_deps_lib}")
set(ENV{PKG_CONFIG_LIBDIR}
    "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig:${_deps_lib}/pkgconfig")
