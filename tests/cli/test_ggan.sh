# ggan on images the test makes: training and its outputs, exact resume (bce, wgan-gp,
# conditional), sampling, interpolation, scoring, Ctrl-C, bad input.
source "$TESTS/cli/lib.sh"
GGAN=${GGAN:?}
TOOL=ggan
boot=$TESTS/../data/ankle-boot.png
png_magic() { test "$(head -c 8 "$1" | od -An -tx1 | tr -d ' ')" = 89504e470d0a1a0a; }
png_size() { od -An -tu1 -j16 -N8 "$1" | awk '{print $3 * 256 + $4 "x" $7 * 256 + $8}'; }
differ() { ! cmp -s "$1" "$2"; }
# The safetensors header (JSON) of a checkpoint: its tensor names and metadata.
header() { head -c "$(od -An -tu4 -N4 "$1" | tr -d ' ')" <(tail -c +9 "$1"); }
# idx FILE COUNT WIDTH HEIGHT: an IDX image file of COUNT images (class 0 bright on the left,
# class 1 on the right, for 8x8).
idx() {
  LC_ALL=C awk -v n="$2" -v w="$3" -v h="$4" 'BEGIN {
    printf "%c%c%c%c%c%c%c%c%c%c%c%c%c%c%c%c", 0, 0, 8, 3, 0, 0, 0, n, 0, 0, 0, h, 0, 0, 0, w
    for (i = 0; i < n; i++) for (y = 0; y < h; y++) for (x = 0; x < w; x++)
      printf "%c", ((i % 2 == 0) == (x < w / 2)) ? 230 : 20
  }' >"$1"
}
idx images.idx 64 8 8
LC_ALL=C awk 'BEGIN { printf "%c%c%c%c%c%c%c%c", 0, 0, 8, 1, 0, 0, 0, 64; for (i = 0; i < 64; i++) printf "%c", i % 2 }' >labels.idx
data=(--data images.idx --labels labels.idx)
tiny=("${data[@]}" --latent 8 --g-channels 16 --d-channels 8 --batch 8)

# Training: a checkpoint, a log row per step, the loss chart, a preview grid, the trace.
run "$GGAN" train "${tiny[@]}" --steps 100 --log train.tsv --plot loss.png --preview preview.png --preview-every 50 \
  -o gan.st
expect_status 0 "train a tiny GAN"
check "a checkpoint" test -s gan.st
check "a header and a row per step in the log" test "$(wc -l <train.tsv)" -eq 101
check "the log's columns" test "$(head -1 train.tsv)" = "$(printf 'step\td_loss\tg_loss\td_real\td_fake\tgp\timages_per_s\tseconds')"
check "steps 1..100 in the log" test "$(awk -F'\t' 'NR > 1 && $1 == NR - 1' train.tsv | wc -l)" -eq 100
check "D(x) and D(G(z)) are probabilities for bce" \
  awk -F'\t' 'NR > 1 && !($4 >= 0 && $4 <= 1 && $5 >= 0 && $5 <= 1) {bad = 1} END {exit bad}' train.tsv
check "--plot writes a PNG" png_magic loss.png
check "--preview writes an 8x8 grid of 8x8 images, scaled 2" test "$(png_size preview.png)" = "164x164"
check "the trace: D loss, G loss, D(x), D(G(z)) at each preview" \
  grep -qE "^ggan: step 50: D loss [0-9.]+, G loss [0-9.]+, D\(x\) [0-9.]+, D\(G\(z\)\) [0-9.]+; preview in preview.png$" err
check "and where the checkpoint went" grep -q "^ggan: wrote gan.st (step 100)$" err
header gan.st >gan.json
check "the format is gen-gan" grep -qF '"format":"gen-gan"' gan.json
for t in g.fc.weight g.running d.out.weight g.optimizer.m g.optimizer.v d.optimizer.m d.optimizer.v; do
  check "the checkpoint holds $t" grep -qF "\"$t\"" gan.json
done

# Exact resume: 20 steps in one run, or 10 + resume + 10, give the same bytes; for each loss.
for loss in bce wgan-gp; do
  "$GGAN" train -q "${tiny[@]}" --loss $loss --steps 20 --log $loss.tsv -o full-$loss.st
  "$GGAN" train -q "${tiny[@]}" --loss $loss --steps 10 -o half-$loss.st
  "$GGAN" train -q --resume half-$loss.st --steps 20 "${data[@]}" -o resumed-$loss.st
  check "$loss: 20 steps = 10 + resume + 10, byte for byte" cmp -s full-$loss.st resumed-$loss.st
done
"$GGAN" train -q "${tiny[@]}" --conditional --steps 100 -o cgan.st
"$GGAN" train -q "${tiny[@]}" --conditional --steps 50 -o half-c.st
"$GGAN" train -q --resume half-c.st --steps 100 "${data[@]}" -o resumed-c.st
check "conditional: 100 steps = 50 + resume + 50, byte for byte" cmp -s cgan.st resumed-c.st
# --time-limit stops early and saves; --resume without --steps runs to the planned total.
"$GGAN" train -q "${tiny[@]}" --steps 30 -o planned.st
"$GGAN" train -q "${tiny[@]}" --steps 30 --time-limit 0.0001 -o early.st
"$GGAN" train -q --resume early.st "${data[@]}" -o early.st
check "--time-limit, then --resume without --steps: the planned 30 steps, byte for byte" cmp -s planned.st early.st
check "bce has no gradient penalty" awk -F'\t' 'NR > 1 && $6 != 0 {bad = 1} END {exit bad}' bce.tsv
check "wgan-gp logs its gradient penalty" awk -F'\t' 'NR > 1 && $6 > 0 {n++} END {exit !(n == 20)}' wgan-gp.tsv
header full-wgan-gp.st >wgan.json
check "wgan-gp's own defaults: 5 critic steps per generator step" \
  grep -qF -e 'd.adam_steps\":100,' wgan.json -e 'g.adam_steps\":20,' wgan.json
check "wgan-gp's own defaults: lr 1e-4, betas 0 and 0.9" \
  grep -qE 'beta1\\":0(\.0)?,\\"beta2\\":(0\.9|0\.8999+[0-9]*),.*d_steps\\":5,.*lr\\":(0\.0001|1e-04|9\.9999+[0-9]*e-05)[,}]' wgan.json
"$GGAN" train -q "${tiny[@]}" --steps 20 -o again.st
check "same seed, same checkpoint" cmp -s full-bce.st again.st
"$GGAN" train -q "${tiny[@]}" --steps 20 --seed 2 -o other.st
check "another seed, another checkpoint" differ full-bce.st other.st
run "$GGAN" train --resume half-bce.st --steps 20 --lr 5 "${data[@]}" -o resumed2.st
check "--resume warns about ignored settings" grep -q "^ggan: warning: --lr ignored: --resume continues" err
check "and ignores them" cmp -s full-bce.st resumed2.st
run "$GGAN" train -q "${tiny[@]}" --conditional --steps 2 --preview cpreview.png -o c2.st
check "a conditional preview: a column per class, 6 rows, scaled 2" test "$(png_size cpreview.png)" = "44x124"

# sample: the same seed gives the same images; image i of a seed does not depend on -n.
"$GGAN" sample gan.st -n 4 --seed 3 -o s1.png
"$GGAN" sample gan.st -n 4 --seed 3 -o s2.png
"$GGAN" sample gan.st -n 4 --seed 4 -o s3.png
check "same seed, same samples" cmp -s s1.png s2.png
check "another seed, other samples" differ s1.png s3.png
check "a 2x2 grid of 8x8 images with 2-pixel padding" test "$(png_size s1.png)" = "22x22"
"$GGAN" sample gan.st -n 3 --grid 3x1 --scale 2 -o row.png
check "--grid 3x1 --scale 2" test "$(png_size row.png)" = "64x24"
"$GGAN" sample gan.st -n 4 --seed 3 -o 'n-%02d.png'
check "numbered files" test -s n-00.png -a -s n-03.png -a ! -e n-04.png
check "each of the model's size" test "$(png_size n-01.png)" = "8x8"
"$GGAN" sample gan.st -n 1 --seed 3 -o 'one-%02d.png'
check "image 0 of a seed does not depend on -n" same_pixels one-00.png n-00.png
"$GGAN" sample gan.st -n 1 --seed 3 -o single.png
check "one image is written as it is, no frame" same_pixels single.png n-00.png
"$GGAN" sample gan.st -n 4 --seed 3 --truncation 0.5 -o trunc.png
check "--truncation changes the samples" differ trunc.png s1.png
"$GGAN" sample gan.st -n 4 --seed 3 --truncation 1 -o trunc1.png
check "--truncation 1 is no truncation" cmp -s trunc1.png s1.png
"$GGAN" sample gan.st -n 2 -o - >stdout.png
check "-o - writes the PNG to stdout" png_magic stdout.png
"$GGAN" sample cgan.st --prompt all -n 3 -o all.png
check "--prompt all: a row per class" test "$(png_size all.png)" = "32x22"
"$GGAN" sample cgan.st --prompt all -n 3 --labels -o all-labelled.png
check "--labels: the class names beside the rows, the same height" \
  test "$(png_size all-labelled.png | cut -dx -f2)" = 22 -a "$(png_size all-labelled.png | cut -dx -f1)" -gt 32
run "$GGAN" sample cgan.st --prompt 1 --labels -o x.png
TOOL=ggan expect_error 2 "--labels: for the grid of --prompt all" "--labels without --prompt all"
"$GGAN" sample cgan.st --prompt 1 -n 3 --seed 5 -o 'c1-%d.png'
"$GGAN" sample cgan.st --prompt all -n 3 --seed 5 -o 'call-%d.png'
check "--prompt all: class 1's row is --prompt 1" bash -c 'for i in 0 1 2; do same_pixels c1-$i.png call-$((i + 3)).png || exit 1; done'
check "--prompt all: the classes differ" differ call-0.png call-3.png

# interpolate: a strip from sample --seed FROM's first image to sample --seed TO's.
"$GGAN" interpolate gan.st --from 3 --to 8 --frames 5 -o walk.png
check "--frames 5: a 5x1 strip" test "$(png_size walk.png)" = "52x12"
"$GGAN" interpolate gan.st --from 3 --to 8 --frames 5 -o 'f-%d.png'
"$GGAN" sample gan.st --seed 8 -n 1 -o 'to-%d.png'
check "the first frame is sample --seed FROM's first image" same_pixels f-0.png n-00.png
check "the last frame is sample --seed TO's first image" same_pixels f-4.png to-0.png
check "five frames" test -s f-4.png -a ! -e f-5.png
"$GGAN" interpolate gan.st --from 3 --to 8 --frames 5 --lerp -o 'lerp-%d.png'
check "--lerp: the same ends" bash -c 'same_pixels lerp-0.png f-0.png && same_pixels lerp-4.png f-4.png'
check "--lerp: another path in the middle" differ lerp-2.png f-2.png
"$GGAN" interpolate gan.st --from 3 --to 8 --frames 5 --scale 2 -o walk.gif
check "-o walk.gif: an animated GIF89a of the walk" test "$(head -c 6 walk.gif)" = GIF89a
check "the GIF's frames are the images, scaled (16x16)" \
  test "$(od -An -tu2 -j6 -N4 walk.gif | tr -s ' ')" = " 16 16"
check "five frames" test "$(od -An -tx1 -v walk.gif | tr -d '\n' | grep -o ' 21 f9 04' | wc -l)" -eq 5
run "$GGAN" interpolate gan.st --frames 5 -o 'f-%d.gif'
expect_error 2 "-o 'f-%d.gif': numbered outputs are PNGs" "a numbered GIF"
"$GGAN" interpolate cgan.st --prompt 0 --frames 3 -o - >cwalk.png
check "interpolate a conditional model within a class, to stdout" test "$(png_size cwalk.png)" = "32x12"

# score: a line per image; bce gives the probability of real, the others a critic score.
run "$GGAN" score gan.st n-00.png n-01.png
expect_status 0 "score two images"
check "one line per image with a percentage" \
  test "$(grep -cE '^n-0[01]\.png	[0-9]+\.[0-9]% real	\(logit -?[0-9]+\.[0-9]{3}\)$' out)" -eq 2
run "$GGAN" score full-wgan-gp.st n-00.png
check "a critic score for wgan-gp" grep -qE '^n-00\.png	-?[0-9]+\.[0-9]{3}	\(critic score' out
run "$GGAN" score cgan.st --prompt 1 n-00.png
check "a conditional model judges against a class" grep -qE '^n-00\.png	[0-9.]+% real' out

# Ctrl-C: finishes the step, saves, exits 130; the saved run resumes.
"$GGAN" train "${tiny[@]}" --steps 1000000 -o stopped.st 2>err &
pid=$!
sleep 1
kill -INT $pid
wait $pid
status=$?
expect_status 130 "Ctrl-C during training"
check "Ctrl-C saves a checkpoint" test -s stopped.st
check "and says so" grep -q "^ggan: interrupted: saved step [0-9]* to stopped.st$" err
no_temp_files "after Ctrl-C"
at=$(sed -n 's/^ggan: interrupted: saved step \([0-9]*\) .*/\1/p' err)
run "$GGAN" train -q --resume stopped.st --steps $((${at:-0} + 5)) "${data[@]}" -o stopped.st
expect_status 0 "the interrupted run resumes"

# Bad input: one line naming the file or option, non-zero exit, no output.
run "$GGAN" sample cgan.st --prompt sneaker -o x.png
expect_error 1 "cgan.st: unknown class 'sneaker'; the classes are: 0, 1$" "an unknown class"
run "$GGAN" sample gan.st --prompt 1 -o x.png
expect_error 1 "gan.st: --prompt '1': this model has no classes$" "--prompt on an unconditional model"
run "$GGAN" sample gan.st --prompt all -o x.png
expect_error 1 "gan.st: --prompt all: this model has no classes$" "--prompt all on an unconditional model"
run "$GGAN" sample cgan.st -o x.png
expect_error 1 "cgan.st: this model is class-conditional: give --prompt CLASS or all \(the classes are: 0, 1\)$" \
  "a conditional model without --prompt"
run "$GGAN" score cgan.st n-00.png
expect_error 1 "cgan.st: this model is class-conditional: give --prompt CLASS" "score: a conditional model without --prompt"
run "$GGAN" score gan.st --prompt 1 n-00.png
expect_error 1 "gan.st: --prompt '1': this model has no classes$" "score: --prompt on an unconditional model"
run "$GGAN" interpolate cgan.st --prompt all -o x.png
expect_error 2 "--prompt all: interpolate walks within one class" "interpolate --prompt all"
run "$GGAN" interpolate gan.st --frames 1 -o x.png
expect_error 2 "--frames 1: at least 2" "--frames 1"
run "$GGAN" sample gan.st --truncation 0 -o x.png
expect_error 2 "--truncation: 0 is outside \(0, 1\]" "--truncation 0"
run "$GGAN" sample gan.st --truncation 1.5 -o x.png
expect_error 2 "--truncation: 1.5 is outside \(0, 1\]" "--truncation 1.5"
run "$GGAN" interpolate gan.st --truncation 1.5 -o x.png
expect_error 2 "--truncation: 1.5 is outside \(0, 1\]" "interpolate --truncation 1.5"
run "$GGAN" sample gan.st --grid 1x1 -n 4 -o x.png
expect_error 2 "--grid 1x1 holds 1 images, fewer than the 4 asked for" "a grid too small"
run "$GGAN" sample gan.st --grid 3 -o x.png
expect_error 2 "--grid '3': expected COLSxROWS" "a bad --grid"
run "$GGAN" sample gan.st -o 'x-%s.png'
expect_error 2 "-o 'x-%s.png': a numbered output needs one field" "a bad numbered output"
head -c 100 n-00.png >cut.png
run "$GGAN" score gan.st n-01.png cut.png
expect_error 1 "cut.png: not a valid PNG" "a truncated PNG"
check "and nothing printed for the images before it" test ! -s out
run "$GGAN" score gan.st "$boot"
expect_error 1 ".*ankle-boot.png: the image is 28x28 gray; the model wants 8x8 gray$" "a PNG of the wrong size"
run "$GGAN" score gan.st missing.png
expect_error 1 "missing.png: " "a missing image"
run "$GGAN" sample n-00.png -o x.png
expect_error 1 "n-00.png: not a valid safetensors file" "a PNG as the checkpoint"
if [ -n "${GDIFFUSE:-}" ]; then
  "$GDIFFUSE" train -q "${data[@]}" --channels 8 --groups 4 --time-dim 8 --batch 2 --T 10 --steps 1 -o ddpm.st
  run "$GGAN" sample ddpm.st -o x.png
  expect_error 1 "ddpm.st: not a GAN: its format is 'gen-unet', expected 'gen-gan'$" "a diffusion checkpoint"
fi
run "$GGAN" train --data no-such-folder -o x.st
expect_error 1 "no-such-folder: " "a missing data folder"
run "$GGAN" train --data images.idx -o x.st
expect_error 1 "images.idx: an IDX image file needs its labels: give --labels FILE$" "IDX without --labels"
mkdir pngs && cp n-0*.png pngs/
run "$GGAN" train --data pngs --conditional -o x.st
expect_error 1 "pngs: has no labels: --conditional needs labelled images" "--conditional on unlabelled images"
run "$GGAN" train "${data[@]}" --loss lsgan -o x.st
expect_error 2 "loss 'lsgan': expected bce, hinge or wgan-gp" "an unknown --loss"
idx wide.idx 64 8 4
run "$GGAN" train --data wide.idx --labels labels.idx --latent 8 --g-channels 16 --d-channels 8 -o x.st
expect_error 1 "wide.idx: images are 8x4: the GAN wants square images$" "non-square images"
idx big.idx 64 16 16
run "$GGAN" train --resume gan.st --steps 150 --data big.idx --labels labels.idx -o x.st
expect_error 1 "big.idx: images are 16x16x1 but the checkpoint's model wants 8x8x1$" "resume on images of another size"
run "$GGAN" train --resume gan.st --steps 150 --data wide.idx --labels labels.idx -o x.st
expect_error 1 "wide.idx: images are 8x4: the GAN wants square images$" "resume on non-square images"
LC_ALL=C awk 'BEGIN { printf "%c%c%c%c%c%c%c%c", 0, 0, 8, 1, 0, 0, 0, 64; for (i = 0; i < 64; i++) printf "%c", 1 - i % 2 }' >flipped.idx
run "$GGAN" train --resume gan.st --steps 150 --data images.idx --labels flipped.idx -o x.st
expect_error 1 "images.idx: not the images gan.st was trained on" "resume on other data (the same images, other labels)"
run "$GGAN" train -q --resume gan.st --steps 101 "${data[@]}" --limit 32 -o limit.st
check "--limit with --resume: the saved selection is kept, with a warning" grep -q "warning: --limit ignored" err
run "$GGAN" train --resume gan.st --steps 60 "${data[@]}" -o x.st
expect_error 2 "the checkpoint is at step 100 already: give --steps above it" "resume to an earlier step"
"$GGAN" train -q "${tiny[@]}" --steps 2 --no-optimizer -o weights.st
run "$GGAN" train --resume weights.st --steps 10 "${data[@]}" -o x.st
expect_error 1 "weights.st: has no training state to resume from" "resume without optimizer state"
run "$GGAN" train "${tiny[@]}" --steps 5 --plot no/such/dir/loss.png -o x.st
expect_error 1 "no/such/dir/loss.png: " "a plot in a missing folder fails before training"
run "$GGAN" train "${tiny[@]}" --steps 5 --log ok.tsv --preview no/such/dir/p.png -o x.st
expect_error 1 "no/such/dir/p.png: cannot write there: the folder 'no/such/dir' does not exist$" "a preview in a missing folder"
check "and no log begun" test ! -e ok.tsv
mkdir -p unlabelled && "$GGAN" sample gan.st -n 64 -o 'unlabelled/%02d.png'
run "$GGAN" train --resume cgan.st --steps 120 --data unlabelled -o x.st
expect_error 1 "unlabelled: has no labels: this model is class-conditional" "a conditional model resumed on unlabelled images"
check "no stray outputs" test ! -e x.png -a ! -e x.st
no_temp_files "after the errors"
# Numbered previews keep one grid per preview, named by its step.
"$GGAN" train -q "${tiny[@]}" --steps 10 --preview p-%03d.png --preview-every 4 -o previewed.st
check "numbered previews: one grid per preview step and the end" test "$(ls p-*.png | tr '\n' ' ')" = "p-004.png p-008.png p-010.png "
check "each a whole grid" test "$(png_size p-004.png)" = "$(png_size p-010.png)" -a "$(png_size p-004.png)" != "16x16"

# Every image says how it was made: the tool, the settings that decide its pixels, the inputs'
# SHA-256; `ggan info` prints it, and running that command again gives the same bytes.
"$GGAN" sample -q gan.st --seed 5 -n 4 --scale 2 -o made.png
run "$GGAN" info made.png
check "info: the tool and version" grep -qx "Software: ggan 0.1.0" out
check "info: the command, defaults included" grep -qx "gen:command: ggan sample gan.st --truncation 1 --scale 2 -n 4 --seed 5" out
check "info: the checkpoint's SHA-256" grep -qx "gen:inputs: gan.st sha256 $(sha256sum gan.st | cut -d' ' -f1)" out
again=$(sed -n 's/^gen:command: ggan //p' out)
# shellcheck disable=SC2086
"$GGAN" $again -o again.png
check "info's command makes the same bytes" cmp -s made.png again.png
mkdir -p elsewhere
"$GGAN" sample -q ./gan.st --seed 5 -n 4 --scale 2 --threads 1 -o elsewhere/other-name.png
check "the output's name, the threads and the checkpoint's folder change no byte" cmp -s made.png elsewhere/other-name.png
"$GGAN" sample -q gan.st --seed 5 -n 3 -o set-%d.png
run "$GGAN" info set-2.png
check "a numbered image says which it is" grep -qx "gen:image: 2 of 3" out
"$GGAN" interpolate -q gan.st --frames 3 -o walk.gif
run "$GGAN" info walk.gif
check "a GIF carries it as a comment" grep -qx "gen:command: ggan interpolate gan.st --truncation 1 --scale 1 --from 1 --to 2 --frames 3" out
run "$GDIFFUSE" info walk.gif made.png
check "gdiffuse info reads them too, a header per file" test "$(grep -c '^==> ' out)" -eq 2
TOOL=ggan
run "$GGAN" info "$boot"
expect_error 1 ".*ankle-boot.png: holds no text: it was not written by a gen tool$" "info on a picture gen did not write"
printf 'not an image' >junk.png
run "$GGAN" info junk.png
expect_error 1 "junk.png: neither a PNG nor a GIF$" "info on a file that is no image"
head -c 60 made.png >cut.png
run "$GGAN" info cut.png
expect_error 1 "cut.png: a damaged PNG: .*" "info on a cut PNG"

finish
