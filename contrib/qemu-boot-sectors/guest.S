.code16
.globl _start
_start:
  cli
  xor %ax, %ax
  mov %ax, %ds
  mov %ax, %es
  mov %ax, %ss
  mov $0x7c00, %sp
  ljmp $0, $start2
start2:
  mov $banner, %si
  call puts
  mov $0x8000f800, %eax
  call pciread
  cmp $0xffff, %ax
  mov $0x8000f840, %eax
  jne 1f
  mov $0x80000b40, %eax
1:
  call pciread
  and $0xfffe, %ax
  mov %ax, %bp
  lea 2(%bp), %dx
  mov $0x0100, %ax
  out %ax, %dx
tick:
  mov $18, %cx
wait:
  sti
  hlt
  cli
  mov %bp, %dx
  in %dx, %ax
  test $0x0100, %ax
  jnz poweroff
  loop wait
  mov $'.', %al
  call putc
  jmp tick
poweroff:
  mov $msg_off, %si
  call puts
  lea 4(%bp), %dx
  in %dx, %ax
  and $0xc3ff, %ax
  or $0x2000, %ax
  out %ax, %dx
halt:
  hlt
  jmp halt
pciread:
  mov $0xcf8, %dx
  out %eax, %dx
  mov $0xcfc, %dx
  in %dx, %eax
  ret
puts:
  lodsb
  test %al, %al
  jz 2f
  call putc
  jmp puts
2: ret
putc:
  push %dx
  mov $0x3f8, %dx
  out %al, %dx
  pop %dx
  ret
banner: .asciz "NIMBUS-TEST-GUEST up\r\n"
msg_off: .asciz "\r\nNIMBUS-TEST-GUEST power button: off\r\n"
. = _start + 510
.byte 0x55, 0xaa
