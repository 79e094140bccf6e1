# gdiffuse on images the test makes: the forward process, training, exact resume, sampling,
# guidance, image to image, Ctrl-C, bad input.
source "$TESTS/cli/lib.sh"
GDIFFUSE=${GDIFFUSE:?}
TOOL=gdiffuse
boot=$TESTS/../data/ankle-boot.png
png_magic() { test "$(head -c 8 "$1" | od -An -tx1 | tr -d ' ')" = 89504e470d0a1a0a; }
png_size() { od -An -tu1 -j16 -N8 "$1" | awk '{print $3 * 256 + $4 "x" $7 * 256 + $8}'; }
export -f png_size

# The forward process: step 0 is the image itself; a strip shows the steps side by side.
run "$GDIFFUSE" noise "$boot" --t 0 --steps 100 -o same.png
expect_status 0 "noise at step 0"
"$GDIFFUSE" noise same.png --t 0 -o same2.png
check "step 0 is the image: its pixels pass through unchanged" same_pixels same.png same2.png
run "$GDIFFUSE" noise "$boot" --strip 0,25,50,100 --steps 100 -o strip.png
check "a strip of 4 steps: 4 tiles and padding" test "$(png_size strip.png)" = "122x32"
"$GDIFFUSE" noise "$boot" --strip 0,25,50,100 --steps 100 --labels -o labelled.png
check "--labels: the strip grows a row of step labels above it" \
  bash -c '[ "$(png_size labelled.png | cut -dx -f1)" = 122 ] && [ "$(png_size labelled.png | cut -dx -f2)" -gt 40 ]'
run "$GDIFFUSE" noise "$boot" --t 5 --labels -o x.png
expect_error 2 "--labels: for a --strip written as one PNG" "--labels without --strip"
"$GDIFFUSE" noise "$boot" --t 30 --steps 100 --seed 5 -o a.png
"$GDIFFUSE" noise "$boot" --t 30 --steps 100 --seed 5 -o b.png
"$GDIFFUSE" noise "$boot" --t 30 --steps 100 --seed 6 -o c.png
check "same seed, same noise" cmp -s a.png b.png
check "another seed, other noise" bash -c '! cmp -s a.png c.png'

# A labelled data set of 8x8 images as IDX: class 0 bright on the left, class 1 on the right.
make_images
tiny=(--data images.idx --labels labels.idx --channels 8,16 --groups 4 --time-dim 16 --batch 8 --T 50 --warmup 5)

run "$GDIFFUSE" train "${tiny[@]}" --steps 40 --log train.tsv --plot loss.png --preview preview.png -o ddpm.st
expect_status 0 "train a tiny model"
check "a checkpoint" test -s ddpm.st
check "a header and a row per step in the log" test "$(wc -l <train.tsv)" -eq 41
check "--plot writes a PNG" png_magic loss.png
check "--preview writes a PNG" png_magic preview.png
first=$(awk -F'\t' 'NR == 2 {print $3}' train.tsv)
last=$(awk -F'\t' 'NR > 31 {s += $3; n++} END {print s / n}' train.tsv)
check "the loss falls (first $first, last 10 mean $last)" awk -v a="$first" -v b="$last" 'BEGIN {exit !(b < a)}'

# Exact resume: 40 steps, or 20 (of a 40-step schedule) + resume + 20, give the same bytes.
"$GDIFFUSE" train -q "${tiny[@]}" --steps 20 --decay-steps 40 -o half.st
"$GDIFFUSE" train -q --resume half.st --steps 40 "${tiny[@]:0:4}" -o resumed.st
check "40 steps = 20 + resume + 20, byte for byte" cmp -s ddpm.st resumed.st

# --attention: self-attention after the middle block; saved in the config, resumed exactly.
"$GDIFFUSE" train -q "${tiny[@]}" --attention --steps 10 -o attn.st
"$GDIFFUSE" train -q "${tiny[@]}" --attention --steps 5 --decay-steps 10 -o attn-half.st
"$GDIFFUSE" train -q --resume attn-half.st --steps 10 "${tiny[@]:0:4}" -o attn-resumed.st
check "--attention: its weights and config are in the checkpoint" \
  bash -c 'grep -aq "mid.attn.qkv.weight" attn.st && grep -aq "attention\\\\\":true" attn.st'
check "--attention: 10 steps = 5 + resume + 5, byte for byte" cmp -s attn.st attn-resumed.st
"$GDIFFUSE" sample -q attn.st --prompt 1 -n 2 --steps 5 -o attn.png
check "--attention: samples" test "$(png_size attn.png)" = "22x12"

# Sampling: same seed, same images; classes by name or number; grids and numbered files.
run "$GDIFFUSE" sample ddpm.st --prompt list
check "--prompt list names the classes" grep -q "^1	1$" out
"$GDIFFUSE" sample -q ddpm.st --prompt 1 -n 4 --steps 5 --seed 3 -o s1.png
"$GDIFFUSE" sample -q ddpm.st --prompt 1 -n 4 --steps 5 --seed 3 -o s2.png
check "same seed, same samples" cmp -s s1.png s2.png
check "a 2x2 grid of 8x8 images" test "$(png_size s1.png)" = "22x22"
"$GDIFFUSE" sample -q ddpm.st --prompt all -n 3 --steps 5 --scale 2 -o all.png
check "--prompt all: a row per class, scaled" test "$(png_size all.png)" = "64x44"
"$GDIFFUSE" sample -q ddpm.st --prompt all -n 3 --steps 5 --scale 2 --labels -o all-labelled.png
check "--labels: a class name beside each row, the same height" \
  bash -c '[ "$(png_size all-labelled.png | cut -dx -f2)" = 44 ] && [ "$(png_size all-labelled.png | cut -dx -f1)" -gt 64 ]'
run "$GDIFFUSE" sample ddpm.st --prompt 1 --labels -o x.png
expect_error 2 "--labels: for the grid of --prompt all" "--labels without --prompt all"
"$GDIFFUSE" sample -q ddpm.st -n 3 --steps 5 --sampler ddpm -o 'one-%02d.png'
check "numbered files" test -s one-00.png -a -s one-02.png -a ! -e one-03.png
check "each of the model's size" test "$(png_size one-01.png)" = "8x8"
# DPM-Solver++(2M): deterministic, its own images; DDIM's --eta is refused.
"$GDIFFUSE" sample -q ddpm.st --prompt 1 -n 4 --steps 5 --seed 3 --sampler dpm++2m -o dpm1.png
"$GDIFFUSE" sample -q ddpm.st --prompt 1 -n 4 --steps 5 --seed 3 --sampler dpm++2m -o dpm2.png
check "dpm++2m: same seed, same samples" cmp -s dpm1.png dpm2.png
check "dpm++2m: not DDIM's images" bash -c '! cmp -s s1.png dpm1.png'
run "$GDIFFUSE" sample ddpm.st --sampler dpm++2m --eta 0.5 -o x.png
expect_error 2 "--eta: DDIM's and DDPM's" "--eta with dpm++2m"
run "$GDIFFUSE" sample ddpm.st --sampler euler -o x.png
expect_error 2 "--sampler 'euler': ddim, ddpm or dpm\\+\\+2m" "an unknown --sampler"
"$GDIFFUSE" sample -q ddpm.st --prompt 0 -n 2 --steps 20 --trajectory traj.png -o t.png
check "a trajectory: 10 points of 2 images" test "$(png_size traj.png)" = "102x22"
"$GDIFFUSE" sample -q ddpm.st --prompt 0 -n 2 --steps 20 --gif rev.gif -o t2.png
check "--gif: an animated GIF89a of the reverse process" test "$(head -c 6 rev.gif)" = GIF89a
check "--gif: the images side by side (22x12)" test "$(od -An -tu2 -j6 -N4 rev.gif | tr -s ' ')" = " 22 12"
check "--gif: the start and 20 steps, 21 frames" \
  test "$(od -An -tx1 -v rev.gif | tr -d '\n' | grep -o ' 21 f9 04' | wc -l)" -eq 21
check "--gif changes nothing in the images" cmp -s t.png t2.png
"$GDIFFUSE" noise -q 2>/dev/null; "$GDIFFUSE" sample -q ddpm.st -n 1 --steps 5 -o - >stdout.png
check "-o - writes the PNG to stdout" png_magic stdout.png
"$GDIFFUSE" denoise -q ddpm.st one-00.png --t 20 -n 2 --steps 5 -o den.png
check "denoise: image to image" test "$(png_size den.png)" = "22x12"
"$GDIFFUSE" denoise -q ddpm.st one-00.png --strength 0.4 -n 2 --steps 5 -o strength.png
check "denoise --strength 0.4 is --t 20 of T 50" same_pixels den.png strength.png
run "$GDIFFUSE" denoise ddpm.st one-00.png --strength 0.4 --t 20 -o x.png
expect_error 2 "--t excludes --strength" "--strength and --t"
run "$GDIFFUSE" denoise ddpm.st one-00.png -o x.png
expect_error 2 "give --t STEP or --strength S \\(one of them\\)" "denoise without --t or --strength"
# --negative-prompt: guidance pushes away from a class instead of from "no class".
"$GDIFFUSE" sample -q ddpm.st --prompt 1 -n 4 --steps 5 --seed 3 --negative-prompt 0 -o neg.png
check "--negative-prompt changes the images" bash -c '! cmp -s s1.png neg.png'
"$GDIFFUSE" sample -q ddpm.st -n 4 --steps 5 --seed 3 -o plain.png
"$GDIFFUSE" sample -q ddpm.st -n 4 --steps 5 --seed 3 --negative-prompt 0 -o away.png
check "--negative-prompt steers even without a --prompt" bash -c '! cmp -s plain.png away.png'
"$GDIFFUSE" sample -q ddpm.st --prompt 1 -n 4 --steps 5 --seed 3 --negative-prompt 0 --guidance 1 -o neg1.png
"$GDIFFUSE" sample -q ddpm.st --prompt 1 -n 4 --steps 5 --seed 3 --guidance 1 -o cond1.png
check "at guidance 1 the negative prompt has no say" same_pixels neg1.png cond1.png
run "$GDIFFUSE" sample ddpm.st --prompt 1 --negative-prompt 1 -o x.png
expect_error 2 "--negative-prompt '1' is the --prompt" "--negative-prompt equal to --prompt"
run "$GDIFFUSE" sample ddpm.st --prompt 1 --negative-prompt sneaker -o x.png
expect_error 1 "ddpm.st: unknown class 'sneaker'" "an unknown negative prompt"

# Ctrl-C saves and exits 130.
"$GDIFFUSE" train -q "${tiny[@]}" --steps 1000000 -o stopped.st &
pid=$!
sleep 2
kill -INT $pid
wait $pid
check "Ctrl-C exits 130" test $? -eq 130
check "and saves a checkpoint" test -s stopped.st

# Bad input: one line, non-zero exit, no output.
run "$GDIFFUSE" sample ddpm.st --prompt sneaker -o x.png
expect_error 1 "ddpm.st: unknown class 'sneaker'; the classes are: 0, 1$" "an unknown class"
run "$GDIFFUSE" denoise ddpm.st "$boot" --t 10 -o x.png
expect_error 1 ".*ankle-boot.png: the image is 28x28 with 1 channel; the model wants 8x8 with 1$" "wrong image size"
run "$GDIFFUSE" denoise ddpm.st one-00.png --t 51 -o x.png
expect_error 2 "--t 51 is outside 0..50" "t beyond T"
run "$GDIFFUSE" sample ddpm.st --steps 0 -o x.png
expect_error 2 ".*--steps" "steps < 1"
run "$GDIFFUSE" noise "$boot" --t 101 --steps 100 -o x.png
expect_error 2 "step 101 is outside 0..100" "noise beyond T"
head -c 300 "$boot" >cut.png
run "$GDIFFUSE" noise cut.png --t 5 -o x.png
expect_error 1 "cut.png: " "a truncated PNG"
printf 'not a checkpoint' >bad.st
run "$GDIFFUSE" sample bad.st -o x.png
expect_error 1 "bad.st: not a valid safetensors file" "not a checkpoint"
"$GTOK" train -q --model-type char "$TESTS/../data/tricky.txt" -o char.model
printf '1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20\n' >ids
"$GTRAIN" -q --tokenizer char.model --layers 1 --heads 1 --embd 8 --context 4 --batch 2 --steps 1 ids -o lm.st
run "$GDIFFUSE" sample lm.st -o x.png
expect_error 1 "lm.st: not a diffusion model: its format is 'gen-gpt', expected 'gen-unet'" "a GPT checkpoint"
run "$GDIFFUSE" sample ddpm.st --grid 1x1 -n 4 -o x.png
expect_error 2 "--grid 1x1 holds 1 images, fewer than the 4 asked for" "a grid too small"
run "$GDIFFUSE" train --data no-such-folder -o x.st
expect_error 1 "no-such-folder: " "missing data"
check "no stray outputs" test ! -e x.png -a ! -e x.st
no_temp_files "after the errors"
finish
