# Sanitizer builds: -DVMRT_SANITIZE_ADDRESS=ON (ASan + UBSan) or -DVMRT_SANITIZE_THREAD=ON (TSan).
# Applied globally so that the compiled Boost translation unit is instrumented too.
#
# libFuzzer builds: -DVMRT_BUILD_FUZZERS=ON with clang (tools/fuzz makes one in build-fuzz). The
# parsers live in library code (lib/), so that code must carry libFuzzer's coverage
# instrumentation (-fsanitize=fuzzer-no-link) too, or the fuzzers would only see the few branches
# of their own entry points; ASan + UBSan turn memory errors and undefined behaviour into
# findings. Only the fuzz_<name>_libfuzzer executables link libFuzzer itself (-fsanitize=fuzzer,
# tests/fuzz/CMakeLists.txt, which also says which library sources such a build compiles).
#
# clang only: -fno-sanitize=function. clang 14 (Debian 12's) cannot emit UBSan's function-type
# check for C++20 coroutines ("error: Cannot represent a difference across sections", LLVM issue
# 49689); that check (calls through a function pointer of the wrong type) is the one left out.
# (Plain if()s, not generator expressions: directory-wide options also reach custom targets.)
set(vmrt_clang_ubsan_fixes "")
if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  set(vmrt_clang_ubsan_fixes -fno-sanitize=function)
endif()
if(VMRT_BUILD_FUZZERS)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "VMRT_BUILD_FUZZERS needs clang (configure with -DCMAKE_CXX_COMPILER=clang++)")
  endif()
  if(VMRT_SANITIZE_THREAD)
    message(FATAL_ERROR "VMRT_BUILD_FUZZERS (ASan) and VMRT_SANITIZE_THREAD cannot be combined")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined ${vmrt_clang_ubsan_fixes}
                      -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
elseif(VMRT_SANITIZE_ADDRESS)
  add_compile_options(-fsanitize=address,undefined ${vmrt_clang_ubsan_fixes} -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
elseif(VMRT_SANITIZE_THREAD)
  # -Wno-tsan: GCC warns that TSan does not model std::atomic_thread_fence, which Asio uses
  # internally; the warning would otherwise fail the build under -Werror (clang has no such option).
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    add_compile_options(-Wno-tsan)
  endif()
  add_link_options(-fsanitize=thread)
endif()
