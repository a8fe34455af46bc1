# Warning flags shared by every target of the project (not by consumers of the installed package).
add_library(vmrt_warnings INTERFACE)
target_compile_options(vmrt_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wcast-align -Wunused -Woverloaded-virtual
  -Wimplicit-fallthrough
  # Designated initializers name what they set on purpose; the rest keeps its default.
  -Wno-missing-field-initializers
  # GCC 12 reports false positives for std::optional inside std::variant at -O2 (GCC PR 105562).
  -Wno-maybe-uninitialized
  # GCC 12 misreads the custom operator new/delete of Asio coroutine frames (GCC PR 109224).
  -Wno-mismatched-new-delete
  $<$<BOOL:${VMRT_WARNINGS_AS_ERRORS}>:-Werror>)
