#!/bin/sh
# Build the freestanding parasite blob into blobs/parasite.bin and refuse it if it needs any
# absolute relocation (it runs at whatever address the tracee's mmap returns).
set -eu
cd "$(dirname "$0")/.."
mkdir -p blobs
CFLAGS="-O2 -fPIC -ffreestanding -nostdlib -fno-stack-protector -fcf-protection=none -fno-asynchronous-unwind-tables -mno-red-zone -mgeneral-regs-only -fno-builtin -fno-jump-tables -Wall -Werror -Igen"
gcc $CFLAGS -c blob/entry.S -o blobs/entry.o
gcc $CFLAGS -c blob/parasite.c -o blobs/parasite.o
for o in blobs/entry.o blobs/parasite.o; do
  if readelf -rW "$o" | grep -E 'R_X86_64_(64|32|32S|GOT|RELATIVE)' >/dev/null; then
    echo "build-blob: $o has absolute/GOT relocations:" >&2
    readelf -rW "$o" >&2
    exit 1
  fi
done
ld -nostdlib -static --no-warn-rwx-segments -T blob/blob.lds -o blobs/parasite.elf blobs/entry.o blobs/parasite.o
if readelf -rW blobs/parasite.elf | grep -q 'R_X86_64'; then echo "build-blob: relocations left in the linked blob" >&2; exit 1; fi
objcopy -O binary -j .blob blobs/parasite.elf blobs/parasite.bin
nm blobs/parasite.elf | awk '$3 == "parasite_entry" { if ($1 != "0000000000000000") { print "build-blob: entry is not at offset 0" > "/dev/stderr"; exit 1 } }'
echo "build-blob: blobs/parasite.bin $(stat -c %s blobs/parasite.bin) bytes"
