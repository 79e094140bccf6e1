# Output files: atomic replacement of regular files only. Devices and FIFOs are written
# through, symbolic links are followed, modes are kept, long names work.
source "$TESTS/cli/lib.sh"
make_corpus corpus.txt
"$GTOK" train -q --vocab-size 300 corpus.txt -o tok.model || exit 1
"$GTOK" encode -m tok.model corpus.txt -o expected.ids || exit 1

# A character device (a private null device, so a regression cannot clobber /dev/null).
if [ "$(id -u)" -eq 0 ] && mknod null c 1 3 2>/dev/null; then
  run "$GTOK" encode -m tok.model corpus.txt -o null
  expect_status 0 "writing to a null device"
  check "a device stays a device" test -c null
fi
run "$GTOK" encode -m tok.model corpus.txt -o /dev/null
expect_status 0 "writing to /dev/null"
check "/dev/null stays a device" test -c /dev/null

# A FIFO is written through, not replaced.
mkfifo out.fifo
cat out.fifo >from-fifo.ids &
reader=$!
run "$GTOK" encode -m tok.model corpus.txt -o out.fifo
wait $reader
expect_status 0 "writing to a FIFO"
check "a FIFO stays a FIFO" test -p out.fifo
check "the FIFO's reader got everything" cmp -s from-fifo.ids expected.ids

# A symbolic link: its target is replaced, the link stays.
mkdir sub
echo old >sub/real.ids
ln -s sub/real.ids link.ids
run "$GTOK" encode -m tok.model corpus.txt -o link.ids
expect_status 0 "writing through a symbolic link"
check "the link is still a link" test -L link.ids
check "the target got the ids" cmp -s sub/real.ids expected.ids
no_temp_files "after writing through a link"
check "no temporary file beside the target" test "$(ls -A sub)" = real.ids

# The replaced file keeps its mode.
echo old >private.ids
chmod 600 private.ids
run "$GTOK" encode -m tok.model corpus.txt -o private.ids
check "mode 600 is kept" test "$(stat -c %a private.ids)" = 600
check "and the content replaced" cmp -s private.ids expected.ids

# A long (but legal) file name.
long=$(printf 'x%.0s' $(seq 250)).ids
run "$GTOK" encode -m tok.model corpus.txt -o "$long"
expect_status 0 "a 254-byte file name"
check "the long-named file is complete" cmp -s "$long" expected.ids

# Empty names are usage errors; odd names stay one line.
run "$GTOK" encode -m tok.model corpus.txt -o ""
expect_error 2 "an output file name is empty" "empty output name"
run "$GTOK" encode -m "" corpus.txt
expect_error 2 "an input file name is empty" "empty model name"
run "$GTOK" encode -m tok.model "$(printf 'two\nlines.txt')"
expect_error 1 "two\\\\nlines.txt: cannot open: no such file or directory$" "a file name with a newline"

# An endless stream of garbage fails at once instead of reading forever.
run timeout 10 "$GTOK" decode -m tok.model /dev/zero
expect_error 1 "/dev/zero:1:1: '(\\\\x00){24}\.\.\.' is not a token id$" "/dev/zero as ids"
no_temp_files "after the file tests"
finish
