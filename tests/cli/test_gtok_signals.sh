# Ctrl-C, SIGTERM, closed pipes and full disks: no partial files, the right exit codes.
source "$TESTS/cli/lib.sh"
make_corpus corpus.txt
"$GTOK" train -q --vocab-size 300 corpus.txt -o tok.model || exit 1

# An encode that waits on a FIFO is interrupted half-way.
for signal in INT TERM; do
  rm -f fifo out.ids
  mkfifo fifo
  "$GTOK" encode -m tok.model fifo -o out.ids 2>err &
  pid=$!
  exec 3>fifo
  head -100 corpus.txt >&3
  sleep 0.5
  kill -s $signal $pid
  wait $pid
  status=$?
  exec 3>&-
  if [ $signal = INT ]; then expect_status 130 "SIGINT exit status"; else expect_status 143 "SIGTERM exit status"; fi
  check "no output file after SIG$signal" test ! -e out.ids
  no_temp_files "after SIG$signal"
  check "SIG$signal prints nothing" test ! -s err
done

# A closed pipe ends the tool quietly, like any Unix filter.
for i in 1 2 3 4 5 6 7 8; do cat corpus.txt; done >big.txt
"$GTOK" encode -m tok.model big.txt 2>err | head -1 >/dev/null
status=${PIPESTATUS[0]}
check "closed pipe: nothing on stderr" test ! -s err
check "closed pipe: ends as if by SIGPIPE (141), not a crash" test "$status" -eq 141

# A full disk on stdout is reported.
if [ -w /dev/full ]; then
  run "$GTOK" vocab -m tok.model
  "$GTOK" vocab -m tok.model >/dev/full 2>err
  status=$?
  expect_error 1 "-: write error: no space left on device$" "stdout on a full disk"
fi
finish
