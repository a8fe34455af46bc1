# Warning flags shared by every target of the project (not by consumers of the installed package).
add_library(vmrt_warnings INTERFACE)
target_compile_options(vmrt_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wcast-align -Wunused -Woverloaded-virtual
  -Wimplicit-fallthrough
  # Designated initializers name what they set on purpose; the rest keeps its default.
  -Wno-missing-field-initializers
  # GCC 12 reports false positives for std::optional inside std::variant at -O2 (GCC PR 105562).
  # (GCC-only options from here on: clang rejects the unknown ones under -Werror.)
  $<$<CXX_COMPILER_ID:GNU>:-Wno-maybe-uninitialized>
  # GCC 12 misreads the custom operator new/delete of Asio coroutine frames (GCC PR 109224).
  $<$<CXX_COMPILER_ID:GNU>:-Wno-mismatched-new-delete>
  # GCC 12 at -O2/-O3 reports out-of-bounds memcpy and overlapping copies inside inlined
  # std::string concatenation that cannot happen (GCC PR 105329, PR 105651).
  $<$<AND:$<CXX_COMPILER_ID:GNU>,$<VERSION_LESS:$<CXX_COMPILER_VERSION>,13>>:-Wno-array-bounds -Wno-restrict -Wno-stringop-overflow>
  $<$<BOOL:${VMRT_WARNINGS_AS_ERRORS}>:-Werror>)
