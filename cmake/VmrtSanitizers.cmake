# Sanitizer builds: -DVMRT_SANITIZE_ADDRESS=ON (ASan + UBSan) or -DVMRT_SANITIZE_THREAD=ON (TSan).
# Applied globally so that the compiled Boost translation unit is instrumented too.
if(VMRT_SANITIZE_ADDRESS)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
elseif(VMRT_SANITIZE_THREAD)
  # -Wno-tsan: GCC warns that TSan does not model std::atomic_thread_fence, which Asio uses
  # internally; the warning would otherwise fail the build under -Werror.
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer -Wno-tsan)
  add_link_options(-fsanitize=thread)
endif()
