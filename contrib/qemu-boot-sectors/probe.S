.code16
.globl _start
_start:
  cli
  xor %ax, %ax
  mov %ax, %ds
  mov %ax, %es
  mov %ax, %ss
  mov $0x7c00, %sp
  mov $0x1000, %di
  mov $0x1800, %cx
  rep stosw
  movl $0x2003, 0x1000
  movl $0x3003, 0x2000
  movl $0x0083, 0x3000
  lgdtl gdtr
  mov %cr4, %eax
  or $0x20, %eax
  mov %eax, %cr4
  mov $0x1000, %eax
  mov %eax, %cr3
  mov $0xc0000080, %ecx
  rdmsr
  or $0x100, %eax
  wrmsr
  mov %cr0, %eax
  or $0x80000001, %eax
  mov %eax, %cr0
  ljmpl $0x08, $long
.code64
long:
  # copy the printing tail above 1 MiB and run it there (the kernel runs there too)
  lea tail(%rip), %rsi
  mov $0x100000, %rdi
  mov $(end - tail), %rcx
  rep movsb
  mov $0x100000, %rax
  jmp *%rax
tail:
  lea msg(%rip), %rsi
  mov $0x3f8, %dx
1:
  lodsb
  test %al, %al
  jz 2f
  out %al, %dx
  jmp 1b
2:
  cli
  hlt
  jmp 2b
.p2align 3
gdt:
  .quad 0
  .quad 0x00af9a000000ffff
gdtr:
  .word gdtr - gdt - 1
  .long gdt
msg: .asciz "NIMBUS-PROBE long mode\r\n"
end:
. = _start + 510
.byte 0x55, 0xaa
