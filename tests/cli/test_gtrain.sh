# gtrain on a corpus the test makes: learning, logs, exact resume, Ctrl-C, bad input.
source "$TESTS/cli/lib.sh"
GTRAIN=${GTRAIN:?}
TOOL=gtrain
make_corpus corpus.txt
"$GTOK" train -q --model-type char corpus.txt -o char.model || exit 1
"$GTOK" encode -m char.model corpus.txt -o corpus.ids || exit 1
shape=(--layers 2 --heads 2 --embd 32 --context 16 --batch 4 --eval-every 50 --eval-batches 2)
small=(--tokenizer char.model "${shape[@]}")

# It learns: the loss falls well below where it starts (log(vocab) = 5.8 for 324 pieces).
run "$GTRAIN" "${small[@]}" --steps 200 --lr 3e-3 --warmup 10 --log train.tsv --plot loss.png corpus.ids -o lm.st
expect_status 0 "train a small model"
check "a checkpoint" test -s lm.st
check "a header and a row per step in the log" test "$(wc -l <train.tsv)" -eq 201
first=$(awk -F'\t' 'NR == 2 {print $3}' train.tsv)
last_val=$(awk -F'\t' '$5 != "" {v = $5} END {print v}' train.tsv)
vocab=$(("$("$GTOK" vocab -m char.model | wc -l)" - 1))
check "the loss starts near log(vocab) (was $first, vocab $vocab)" \
  awk -v x="$first" -v v="$vocab" 'BEGIN {exit !(x > log(v) - 0.5 && x < log(v) + 0.5)}'
check "validation loss below 2.6 after 200 steps (was $last_val)" awk -v x="$last_val" 'BEGIN {exit !(x < 2.6)}'
check "the trace shows validation lines" grep -q "step 200: train loss .*, val loss" err
check "the loss chart is drawn" grep -q "loss (\*) and validation loss (o)" err
check "--plot writes a PNG" test "$(head -c 8 loss.png | od -An -tx1 | tr -d ' ')" = 89504e470d0a1a0a

# Exact resume: 200 steps in one run, or 100 + resume + 100, give the same bytes.
"$GTRAIN" -q "${small[@]}" --steps 100 --decay-steps 200 corpus.ids -o half.st
"$GTRAIN" -q --resume half.st --steps 200 corpus.ids -o resumed.st
"$GTRAIN" -q "${small[@]}" --steps 200 corpus.ids -o full.st
check "200 steps = 100 + resume + 100, byte for byte" cmp -s full.st resumed.st
"$GTRAIN" -q "${small[@]}" --steps 200 corpus.ids -o again.st
check "same seed, same checkpoint" cmp -s full.st again.st
"$GTRAIN" -q "${shape[@]}" --steps 20 --init full.st corpus.ids -o tuned.st
check "--init fine-tunes from a checkpoint" test -s tuned.st

# Ctrl-C: finishes the step, saves, exits 130; the saved run resumes.
"$GTRAIN" "${small[@]}" --steps 1000000 corpus.ids -o stopped.st 2>err &
pid=$!
sleep 2
kill -INT $pid
wait $pid
status=$?
expect_status 130 "Ctrl-C during training"
check "Ctrl-C saves a checkpoint" test -s stopped.st
check "and says so" grep -q "interrupted: saved step" err
no_temp_files "after Ctrl-C"
"$GTRAIN" -q --resume stopped.st --steps 1000000 --eval-every 1000000 corpus.ids -o stopped.st &
pid=$!
sleep 1
kill -INT $pid
wait $pid
check "the interrupted run resumes" test $? -eq 130

# SIGTERM does the same, with the status a SIGTERM gives (143); the log is written as it goes.
"$GTRAIN" -q "${small[@]}" --steps 1000000 --log live.tsv corpus.ids -o termed.st &
pid=$!
sleep 2
check "the log grows while training runs" test "$(wc -l <live.tsv)" -gt 1
kill -TERM $pid
wait $pid
check "SIGTERM saves and exits 143" test $? -eq 143 -a -s termed.st

# --resume keeps the checkpoint's settings: it says so when others are given, and without
# --steps it trains to the saved total.
run "$GTRAIN" --resume half.st --steps 200 --lr 5 corpus.ids -o resumed2.st
check "--resume warns about ignored settings" grep -q "warning: --lr ignored: --resume continues" err
check "and ignores them" cmp -s resumed2.st full.st
run "$GTRAIN" --resume full.st corpus.ids -o x.st
expect_error 2 "the checkpoint is at step 200 already" "without --steps, --resume aims at the saved total"

# A diverging run stops with a clear message and writes nothing.
run "$GTRAIN" -q "${small[@]}" --steps 100 --lr 1e6 --grad-clip 0 corpus.ids -o nan.st
expect_error 1 "nan.st: training diverged at step [0-9]+: the loss is (NaN|infinite)" "divergence"
check "no checkpoint from a diverged run" test ! -e nan.st

# Bad input.
run "$GTRAIN" corpus.ids -o x.st
expect_error 2 "give --tokenizer tok.model" "no tokenizer"
printf '1 2 3\n4 999 5\n' >bad.ids
run "$GTRAIN" "${small[@]}" bad.ids -o x.st
expect_error 1 "bad.ids:2:3: token id 999 is outside the tokenizer's vocabulary \(0..[0-9]+\)$" "id outside the vocabulary"
printf '1 2 3\n' >short.ids
run "$GTRAIN" "${small[@]}" short.ids -o x.st
expect_error 1 "short.ids: 3 training tokens: need more than the context \(16\)$" "too few tokens"
run "$GTRAIN" --init char.model corpus.ids -o x.st
expect_error 1 "char.model: not a valid safetensors file" "a tokenizer given as a checkpoint"
head -c 3000 full.st >cut.st
run "$GTRAIN" --init cut.st corpus.ids -o x.st
expect_error 1 "cut.st: not a valid safetensors file" "a truncated checkpoint"
"$GTRAIN" -q "${small[@]}" --steps 5 --no-optimizer corpus.ids -o weights.st
run "$GTRAIN" --resume weights.st --steps 10 corpus.ids -o x.st
expect_error 1 "weights.st: has no training state to resume from" "resume without optimizer state"
run "$GTRAIN" --resume full.st --steps 100 corpus.ids -o x.st
expect_error 2 "the checkpoint is at step 200 already" "resume to an earlier step"
run "$GTRAIN" "${small[@]}" --heads 3 corpus.ids -o x.st
expect_error 2 "--embd 32 is not divisible by --heads 3" "heads that do not divide the width"
run "$GTRAIN" "${small[@]}" --steps 5 --plot no/such/dir/loss.png corpus.ids -o x.st
expect_error 1 "no/such/dir/loss.png: " "a plot in a missing folder fails before training"
check "no stray checkpoints" test ! -e x.st
no_temp_files "after the errors"
# --dropout: masks from the run's generator, so the same bytes on any thread count, and resumed.
"$GTRAIN" -q "${small[@]}" --steps 20 --dropout 0.2 --threads 1 corpus.ids -o drop1.st
"$GTRAIN" -q "${small[@]}" --steps 20 --dropout 0.2 --threads 2 corpus.ids -o drop2.st
check "--dropout: the same checkpoint on 1 and 2 threads" cmp -s drop1.st drop2.st
"$GTRAIN" -q "${small[@]}" --steps 20 --threads 2 corpus.ids -o nodrop.st
# (The weights, not the files, which differ in their saved settings anyway: the next tokens'
# probabilities.)
probs() { "$GSAMPLE" "$1" --probs 5 -p "the "; }
check "--dropout changes the run" test "$(probs drop1.st)" != "$(probs nodrop.st)"
"$GTRAIN" -q "${small[@]}" --steps 10 --decay-steps 20 --dropout 0.2 corpus.ids -o drop-half.st
"$GTRAIN" -q --resume drop-half.st --steps 20 corpus.ids -o drop-resumed.st
check "--dropout: 10 + resume + 10 = 20, byte for byte" cmp -s drop1.st drop-resumed.st
# --muon: the blocks' matrices by Muon, its momentum saved with AdamW's moments: the same bytes
# on any thread count, and resumed exactly.
"$GTRAIN" -q "${small[@]}" --steps 20 --muon --threads 1 corpus.ids -o muon1.st
"$GTRAIN" -q "${small[@]}" --steps 20 --muon --threads 2 corpus.ids -o muon2.st
check "--muon: the same checkpoint on 1 and 2 threads" cmp -s muon1.st muon2.st
check "--muon changes the run" test "$(probs muon1.st)" != "$(probs nodrop.st)"
"$GTRAIN" -q "${small[@]}" --steps 10 --decay-steps 20 --muon corpus.ids -o muon-half.st
"$GTRAIN" -q --resume muon-half.st --steps 20 corpus.ids -o muon-resumed.st
check "--muon: 10 + resume + 10 = 20, byte for byte" cmp -s muon1.st muon-resumed.st
# A checkpoint from before --muon (no such keys) resumes with AdamW, --muon given or not.
edit_meta half.st old1.st settings muon -
edit_meta old1.st old.st settings muon_momentum -
run "$GTRAIN" --resume old.st --steps 200 --muon corpus.ids -o old-resumed.st
check "a checkpoint without 'muon' resumes as it ran (AdamW), --muon given or not" cmp -s full.st old-resumed.st
check "and --muon is said to be ignored" grep -q "warning: --muon ignored: --resume continues" err
# --grad-accum: N batches a step. Two batches of 6 draw the 12 sequences one batch of 12 does,
# so the first step's training loss is the same (to rounding), and the step counts 2 x 6 x 16.
"$GTRAIN" -q "${small[@]}" --steps 2 --batch 12 --log b12.tsv corpus.ids -o b12.st
run "$GTRAIN" "${small[@]}" --steps 2 --batch 6 --grad-accum 2 --log b6x2.tsv corpus.ids -o b6x2.st
check "--grad-accum 2: the banner says so" grep -q "2 batches of 6 x 16 tokens" err
check "--grad-accum 2 of 6: the first loss is batch 12's" awk -F'\t' 'NR == FNR { if (FNR == 2) a = $3; next }
  FNR == 2 { d = a - $3; exit !(d < 1e-5 && d > -1e-5) }' b12.tsv b6x2.tsv
"$GTRAIN" -q --resume b6x2.st --steps 3 corpus.ids -o b6x2-3.st 2>err
check "--grad-accum is saved and restored" test $? -eq 0 -a ! -s err
# --evaluate: the loss, perplexity and bits per byte of a text under a checkpoint.
head -c 3000 corpus.txt >held.txt
run "$GTRAIN" --evaluate full.st held.txt
check "--evaluate: a line of counts, a line of figures" test "$status" -eq 0 -a "$(wc -l <out)" -eq 2
check "--evaluate: every token but the first predicted (a byte each)" grep -q "^held.txt: 2999 tokens predicted (2999 bytes) with full.st" out
check "--evaluate: perplexity = e^loss, bits per byte = loss / ln 2 (a byte a token)" awk '
  NR == 2 { loss = $2; ppl = $5; bpb = $6; sub(",", "", ppl)
            exit !((ppl - exp(loss)) ^ 2 < 1e-4 && (bpb - loss / log(2)) ^ 2 < 1e-6) }' out
"$GTRAIN" --evaluate full.st - <held.txt >stdin-eval.txt
check "--evaluate reads stdin too" test "$(sed -n 2p stdin-eval.txt)" = "$(sed -n 2p out)"
TOOL=gtrain
printf 'a' >one.txt
# --evaluate --windows N: the mean loss over N random windows, drawn as training draws its
# validation windows (the same --seed): with a run's --eval-batches x --batch of them, that run's
# last validation loss.
"$GTOK" encode -m char.model held.txt -o held.ids || exit 1
"$GTRAIN" -q "${small[@]}" --eval-batches 8 --steps 30 --val held.ids --seed 5 --log windows.tsv corpus.ids -o windows.st
run "$GTRAIN" --evaluate windows.st held.txt --windows 32 --seed 5
check "--evaluate --windows: the windows and the seed named" grep -q "^held.txt: 32 random windows of 16 tokens (seed 5) with windows.st" out
logged=$(tail -1 windows.tsv | cut -f5)
scored=$(awk '$1 == "loss" {print $2}' out)
check "--evaluate --windows 32: the run's last validation loss (8 batches of 4: $logged, $scored)" \
  awk -v a="$logged" -v b="$scored" 'BEGIN {d = a - b; exit !(d < 6e-5 && d > -6e-5)}'
run "$GTRAIN" --evaluate windows.st held.txt --windows 32 --seed 6
check "another seed, other windows: another figure" test "$(awk '$1 == "loss" {print $2}' out)" != "$scored"
run "$GTRAIN" --evaluate windows.st held.txt --windows 20
expect_error 2 "--windows: 20 is not a multiple of 16" "--windows 20"
run "$GTRAIN" --windows 16 held.txt -o x.st
expect_error 2 "--windows requires --evaluate" "--windows without --evaluate"

run "$GTRAIN" --evaluate full.st one.txt
expect_error 1 "one.txt: 1 token: need at least 2 to predict one$" "--evaluate on a text of one token"
run "$GTRAIN" --evaluate full.st -o x.st held.txt
expect_error 2 "--output excludes --evaluate" "--evaluate with -o"
run "$GTRAIN" --tokenizer char.model corpus.ids
expect_error 2 "--output is required" "training without -o"
run "$GTRAIN" "${small[@]}" --steps 2 --dropout 1 corpus.ids -o x.st
expect_error 2 "--dropout: 1 is outside \\[0, 0.9\\]" "--dropout 1"

# --time-limit: the step expected to reach the limit is the last, and is evaluated as a planned
# last step is (the validation loss in its row of the log).
"$GTRAIN" -q "${small[@]}" --steps 1000000 --eval-every 1000000 --time-limit 0.02 --log limited.tsv corpus.ids \
  -o limited.st
check "--time-limit: the last row of the log has a validation loss" \
  test "$(tail -1 limited.tsv | cut -f5)" != "" -a "$(wc -l <limited.tsv)" -gt 3

# With a warmup, the time limit plans the schedule at the warmup's end to end with the time, and
# the same options without --time-limit (--steps the planned total; where the time cut the run
# short, a loaded machine, --steps where it stopped and --decay-steps the total) give the same
# weights: the run follows the plan's schedule, whatever the timing.
run "$GTRAIN" "${small[@]}" --steps 1000000 --warmup 20 --lr 3e-3 --min-lr 1e-4 --time-limit 0.03 --no-optimizer \
  --log planned.tsv corpus.ids -o planned.st
expect_status 0 "a planned time-limited run"
planned=$(sed -n 's/.*time limit: \([0-9]*\) steps fit in 0.03 minutes.*/\1/p' err)
last=$(tail -1 planned.tsv | cut -f1)
check "the plan is announced ($planned steps) and the run ends by it (at $last)" \
  test -n "$planned" -a "$last" -le "${planned:-0}" -a "$last" -gt 20
"$GTRAIN" -q "${small[@]}" --steps "$last" --decay-steps "$planned" --warmup 20 --lr 3e-3 --min-lr 1e-4 \
  --no-optimizer corpus.ids -o unlimited.st
check "--steps $last --decay-steps $planned without --time-limit: the same checkpoint" cmp -s planned.st unlimited.st

finish
