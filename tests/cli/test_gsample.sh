# gsample on a small model the test trains: determinism, the knobs, streams, bad input.
source "$TESTS/cli/lib.sh"
GTRAIN=${GTRAIN:?}
GSAMPLE=${GSAMPLE:?}
TOOL=gsample
make_corpus corpus.txt
"$GTOK" train -q --model-type char corpus.txt -o char.model || exit 1
"$GTOK" encode -m char.model corpus.txt -o corpus.ids || exit 1
"$GTRAIN" -q --tokenizer char.model --layers 2 --heads 2 --embd 32 --context 16 --batch 8 --steps 150 --lr 3e-3 \
  --warmup 10 corpus.ids -o lm.st || exit 1

run "$GSAMPLE" lm.st --prompt "the quick" -n 60 --seed 4 </dev/null
expect_status 0 "sample"
cp out one.txt
# The text ends with a newline: one is added after the 60 tokens unless the last of them is one.
ended() { sed '$a\'; }
ends_with_newline() { test "$(tail -c 1 "$1" | od -An -tx1 | tr -d ' ')" = 0a; }
check "60 tokens of text (one byte each: the corpus is ASCII), then a newline" \
  test "$(head -c 60 one.txt | ended | wc -c)" -eq "$(wc -c <one.txt)" -a "$(wc -c <one.txt)" -ge 60
check "the text ends with a newline" ends_with_newline one.txt
"$GSAMPLE" lm.st --prompt "the quick" -n 60 --seed 4 </dev/null >two.txt
check "same seed, same text" cmp -s one.txt two.txt
"$GSAMPLE" lm.st --prompt "the quick" -n 60 --seed 5 </dev/null >three.txt
differ() { ! cmp -s "$1" "$2"; }
check "another seed, another text" differ one.txt three.txt
"$GSAMPLE" lm.st --prompt "the quick" -n 60 --seed 4 --ids </dev/null | "$GTOK" decode -m char.model | ended >decoded.txt
check "--ids | gtok decode gives the same text" cmp -s one.txt decoded.txt
"$GSAMPLE" lm.st --prompt "the" -n 40 -t 0 --seed 1 </dev/null >greedy1.txt
"$GSAMPLE" lm.st --prompt "the" -n 40 -t 0 --seed 9 </dev/null >greedy2.txt
check "temperature 0 is greedy: the seed does not matter" cmp -s greedy1.txt greedy2.txt
"$GSAMPLE" lm.st --prompt "the" -n 40 --top-k 1 --seed 3 </dev/null >topk1.txt
check "top-k 1 is greedy too" cmp -s greedy1.txt topk1.txt
"$GSAMPLE" lm.st --prompt "the" -n 40 --top-p 0.000001 --seed 3 </dev/null >topp.txt
check "a tiny top-p is greedy too" cmp -s greedy1.txt topp.txt
"$GSAMPLE" lm.st --prompt "the" -n 40 --min-p 1 --seed 3 </dev/null >minp.txt
check "min-p 1 is greedy too" cmp -s greedy1.txt minp.txt
printf 'the' | "$GTOK" encode -m char.model | "$GSAMPLE" lm.st -n 40 -t 0 >stdin.txt
check "ids on stdin are the prompt" cmp -s greedy1.txt stdin.txt
run "$GSAMPLE" lm.st -n 20 </dev/null
check "without a prompt it starts from a newline" test "$status" -eq 0 -a "$(head -c 20 out | ended | wc -c)" -eq "$(wc -c <out)"

# The KV cache changes the cost, not the text, while the context fits the window (16 here).
"$GSAMPLE" lm.st --prompt "the" -n 13 --seed 6 </dev/null >cached.txt
"$GSAMPLE" lm.st --prompt "the" -n 13 --seed 6 --no-cache </dev/null >uncached.txt
check "cached and uncached sampling agree within the window" cmp -s cached.txt uncached.txt
run "$GSAMPLE" lm.st --prompt "the" -n 100 --seed 6 </dev/null
check "past the window the cache slides" test "$status" -eq 0 -a "$(head -c 100 out | ended | wc -c)" -eq "$(wc -c <out)"
# A model wide enough (128) that each token's products are split between the threads.
"$GTRAIN" -q --tokenizer char.model --layers 1 --heads 2 --embd 128 --context 16 --batch 2 --steps 3 corpus.ids \
  -o wide.st || exit 1
"$GSAMPLE" wide.st --prompt "the" -n 40 --seed 3 --threads 1 --ids </dev/null >one-thread.ids
"$GSAMPLE" wide.st --prompt "the" -n 40 --seed 3 --threads 2 --ids </dev/null >two-threads.ids
check "the same tokens on one thread and two" cmp -s one-thread.ids two-threads.ids

# --stop: the text ends before the stop string.
"$GSAMPLE" lm.st --prompt "the" -n 300 --seed 2 </dev/null >long.txt
stop=$(head -c 30 long.txt | tail -c 3)
"$GSAMPLE" lm.st --prompt "the" -n 300 --seed 2 --stop "$stop" --ids </dev/null | "$GTOK" decode -m char.model >stopped-ids.txt
check "--stop ends the text before the stop string" \
  test "$(cat stopped-ids.txt)$stop" = "$(head -c "$(($(wc -c <stopped-ids.txt) + 3))" long.txt)"
"$GSAMPLE" lm.st --prompt "the" -n 300 --seed 2 --stop "$stop" </dev/null >stopped.txt
check "--stop: the text is the ids' text, ended" cmp -s stopped.txt <(ended <stopped-ids.txt)
"$GSAMPLE" lm.st --prompt "the" -n 20 --num-samples 2 --ids </dev/null | "$GTOK" decode -m char.model >two-ids.txt
check "--num-samples with --ids decodes (no headers in the ids)" test "$(wc -c <two-ids.txt)" -eq 40

# The teaching views.
run "$GSAMPLE" lm.st --prompt "the qu" --probs 4 --temperature 0,1,2 </dev/null
check "--probs: a header, a column header and 4 rows" test "$(wc -l <out)" -eq 6
check "--probs at temperature 0 puts everything on one token" grep -qE "^   1  '.'\s+100.0000%" out
check "--probs: below it, temperature 0 lists nothing" grep -qE "^   2                          '" out
run "$GSAMPLE" lm.st --prompt "the" -n 5 --trace </dev/null
check "--trace: the prompt, a line per step, the text" test "$(grep -c '^step ' out)" -eq 5 -a "$(grep -c '^prompt: 3 tokens' out)" -eq 1
run "$GSAMPLE" lm.st --prompt "the" -n 10 --num-samples 3 </dev/null
check "--num-samples 3" test "$(grep -c '^=== sample' out)" -eq 3
check "--num-samples: each sample is labelled with its own seed" \
  test "$(grep '^=== sample' out | tr '\n' '|')" = "=== sample 1 of 3 (seed 1) ===|=== sample 2 of 3 (seed 2) ===|=== sample 3 of 3 (seed 3) ===|"
"$GSAMPLE" lm.st --prompt "the" -n 10 --seed 3 </dev/null >seed3.txt
check "--num-samples: sample 3 is what --seed 3 gives alone" cmp -s seed3.txt <(sed -n '/(seed 3)/,$p' out | tail -n +2)
run "$GSAMPLE" lm.st --prompt "the" -n 10 --seed 3 --echo </dev/null
check "--echo prints the prompt first" cmp -s out <(printf 'the'; cat seed3.txt)
"$GSAMPLE" lm.st --prompt "the" -n 10 --seed 3 --echo --ids </dev/null | "$GTOK" decode -m char.model | ended >echo-ids.txt
check "--echo --ids: the prompt's ids first" cmp -s echo-ids.txt out
run "$GSAMPLE" lm.st --prompt "the" --probs 3 --echo </dev/null
expect_error 2 "--echo and --probs do not go together" "--echo with --probs"
run "$GSAMPLE" lm.st --prompt "the" --temp 0.5 </dev/null
expect_error 2 "unknown option --temp; did you mean --temperature?" "a mistyped option is named with the nearest"
run "$GSAMPLE" lm.st --prompt "the" -n 0 </dev/null
check "-n 0 writes nothing" test "$status" -eq 0 -a ! -s out

# Bad input: one line, non-zero.
run "$GSAMPLE" char.model --prompt x </dev/null
expect_error 1 "char.model: not a valid safetensors file" "a tokenizer given as the checkpoint"
head -c 5000 lm.st >cut.st
run "$GSAMPLE" cut.st --prompt x </dev/null
expect_error 1 "cut.st: not a valid safetensors file" "a truncated checkpoint"
"$GTOK" train -q --model-type char --character-coverage 0.99 corpus.txt -o other.model
run "$GSAMPLE" lm.st --tokenizer other.model --prompt x </dev/null
expect_error 1 "other.model: is not the tokenizer lm.st was trained with" "a different tokenizer"
run "$GSAMPLE" lm.st --tokenizer char.model --prompt x -n 3 </dev/null
expect_status 0 "the right tokenizer passes the check"
run "$GSAMPLE" lm.st --prompt "" </dev/null
expect_error 1 "--prompt: the prompt encodes to no tokens" "an empty prompt"
run "$GSAMPLE" lm.st --prompt x --temperature -1 </dev/null
expect_error 2 "--temperature: '-1' is not a temperature" "negative temperature"
run "$GSAMPLE" lm.st --prompt x --top-p 0 </dev/null
expect_error 2 "--top-p: 0 is outside \(0, 1\]" "top-p 0"
run "$GSAMPLE" lm.st --prompt x --top-p 1.5 </dev/null
expect_error 2 "--top-p: 1.5 is outside \(0, 1\]" "top-p above 1"
run "$GSAMPLE" lm.st --prompt x --probs 0 </dev/null
expect_error 2 "--probs: Value 0 not in range" "--probs 0"
run "$GSAMPLE" lm.st --prompt x --temperature 0.5,1 </dev/null
expect_error 2 "several temperatures are for --probs" "several temperatures without --probs"
run bash -c "echo '1 2 99999' | '$GSAMPLE' lm.st -n 3"
expect_error 1 "-:1:5: token id 99999 is outside the vocabulary" "prompt ids outside the vocabulary"
finish
