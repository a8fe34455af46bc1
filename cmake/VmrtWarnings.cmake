# Warning flags shared by every target of the project (not by consumers of the installed package).
add_library(vmrt_warnings INTERFACE)
target_compile_options(vmrt_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wcast-align -Wunused -Woverloaded-virtual
  -Wimplicit-fallthrough
  $<$<BOOL:${VMRT_WARNINGS_AS_ERRORS}>:-Werror>)
