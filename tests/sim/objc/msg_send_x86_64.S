// objc_msgSend and objc_msgSendSuper of the simulated runtime, x86-64 System V.
//
// Like Apple's: a nil receiver returns zero in every return register (rax, rdx, xmm0, xmm1) without a
// look-up; otherwise the trampoline saves every register that can carry an argument (rdi, rsi, rdx,
// rcx, r8, r9, xmm0-xmm7, and rax, the vector-register count of variadic calls), asks the C++
// look-up for the IMP of (receiver, selector), restores them and tail-jumps to the IMP through r11
// (a scratch register no argument uses). Stack arguments are never touched: after the jump the IMP
// sees exactly the frame the caller built, and returns straight to the caller.
//
//   IMP vmrt_objc_sim_lookup(id receiver, SEL sel);                  (runtime.cpp)
//   IMP vmrt_objc_sim_lookup_super(struct objc_super* super, SEL sel);

        .text

// Saves the argument registers below rbp in a 16-byte aligned frame: on entry rsp is 8 mod 16, the
// push makes it 0 mod 16, and 192 keeps it there for the call and for movdqa.
.macro SAVE_ARGUMENTS
        pushq   %rbp
        .cfi_def_cfa_offset 16
        .cfi_offset %rbp, -16
        movq    %rsp, %rbp
        .cfi_def_cfa_register %rbp
        subq    $192, %rsp
        movq    %rdi, 0(%rsp)
        movq    %rsi, 8(%rsp)
        movq    %rdx, 16(%rsp)
        movq    %rcx, 24(%rsp)
        movq    %r8, 32(%rsp)
        movq    %r9, 40(%rsp)
        movq    %rax, 48(%rsp)
        movdqa  %xmm0, 64(%rsp)
        movdqa  %xmm1, 80(%rsp)
        movdqa  %xmm2, 96(%rsp)
        movdqa  %xmm3, 112(%rsp)
        movdqa  %xmm4, 128(%rsp)
        movdqa  %xmm5, 144(%rsp)
        movdqa  %xmm6, 160(%rsp)
        movdqa  %xmm7, 176(%rsp)
.endm

.macro RESTORE_ARGUMENTS
        movq    0(%rsp), %rdi
        movq    8(%rsp), %rsi
        movq    16(%rsp), %rdx
        movq    24(%rsp), %rcx
        movq    32(%rsp), %r8
        movq    40(%rsp), %r9
        movq    48(%rsp), %rax
        movdqa  64(%rsp), %xmm0
        movdqa  80(%rsp), %xmm1
        movdqa  96(%rsp), %xmm2
        movdqa  112(%rsp), %xmm3
        movdqa  128(%rsp), %xmm4
        movdqa  144(%rsp), %xmm5
        movdqa  160(%rsp), %xmm6
        movdqa  176(%rsp), %xmm7
        leave
        .cfi_def_cfa %rsp, 8
.endm

        .globl  objc_msgSend
        .type   objc_msgSend, @function
        .p2align 4
objc_msgSend:
        .cfi_startproc
        endbr64
        testq   %rdi, %rdi
        je      .Lnil_receiver
        SAVE_ARGUMENTS
        call    vmrt_objc_sim_lookup
        movq    %rax, %r11
        RESTORE_ARGUMENTS
        jmp     *%r11
.Lnil_receiver:
        xorl    %eax, %eax
        xorl    %edx, %edx
        xorps   %xmm0, %xmm0
        xorps   %xmm1, %xmm1
        ret
        .cfi_endproc
        .size   objc_msgSend, .-objc_msgSend

// rdi is a struct objc_super* {receiver, super_class}: the look-up starts at super_class, and the
// method receives the receiver as self.
        .globl  objc_msgSendSuper
        .type   objc_msgSendSuper, @function
        .p2align 4
objc_msgSendSuper:
        .cfi_startproc
        endbr64
        SAVE_ARGUMENTS
        call    vmrt_objc_sim_lookup_super
        movq    %rax, %r11
        RESTORE_ARGUMENTS
        movq    (%rdi), %rdi
        jmp     *%r11
        .cfi_endproc
        .size   objc_msgSendSuper, .-objc_msgSendSuper

        .section .note.GNU-stack,"",@progbits
