#!/bin/sh
# Builds the freestanding restorer blob into ../../blobs/restorer.bin and refuses
# any relocation that would need the load address (the blob runs at an arbitrary one).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out="$here/../../blobs"
mkdir -p "$out"
node "$here/../../scripts/gen-layout.mjs"
CFLAGS="-O2 -ffreestanding -nostdlib -fpie -fno-stack-protector -fcf-protection=none \
 -fno-asynchronous-unwind-tables -fno-unwind-tables -mno-red-zone -fno-jump-tables -fvisibility=hidden \
 -fno-builtin -mgeneral-regs-only -Wall -Wextra -Werror -Wno-unused-parameter -I$out"
# entry.S first: _start must stay at offset 0 and blob_syscall_insn at 2 (checked below)
units="restorer files memory task threads tty ids"
gcc -c "$here/entry.S" -o "$out/entry.o"
objs="$out/entry.o"
for u in $units; do
  gcc $CFLAGS -c "$here/$u.c" -o "$out/$u.o"
  objs="$objs $out/$u.o"
done
for o in $objs; do
  bad=$(readelf -rW "$o" | awk '/R_X86_64_/ && $3 !~ /R_X86_64_(PC32|PLT32|GOTPCRELX|REX_GOTPCRELX)$/ {print $3}' | sort -u)
  if [ -n "$bad" ]; then echo "restorer blob: absolute relocations in $o: $bad" >&2; exit 1; fi
done
# shellcheck disable=SC2086 # the object list is split on purpose
ld -pie --no-dynamic-linker -z noexecstack -T "$here/blob.ld" -o "$out/restorer.elf" $objs
dyn=$(readelf -rW "$out/restorer.elf" | grep -c R_X86_64_ || true)
if [ "$dyn" != "0" ]; then echo "restorer blob: $dyn dynamic relocations left in the linked blob" >&2; exit 1; fi
objcopy -O binary -j .text -j .rodata -j .data "$out/restorer.elf" "$out/restorer.bin"
nm "$out/restorer.elf" | awk '$3 == "_start" { print $1 }' | grep -qx 0000000000000000 || { echo "restorer blob: _start is not at offset 0" >&2; exit 1; }
nm "$out/restorer.elf" | awk '$3 == "blob_syscall_insn" { print $1 }' | grep -qx 0000000000000002 || { echo "restorer blob: blob_syscall_insn is not at offset 2" >&2; exit 1; }
