# gscore: a tiny classifier trained on part of Fashion-MNIST, then classify and fid on PNGs the
# test writes from the test set; determinism, exact resume, Ctrl-C, bad input.
source "$TESTS/cli/lib.sh"
GSCORE=${GSCORE:?}
TOOL=gscore
if [ ! -e /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ]; then
  echo "SKIP: Debian's dataset-fashion-mnist is not installed"
  exit 0
fi

# PNGs (stdlib python): the first 20 test images, a 32x32 gray and a 28x28 RGB image.
mkdir real
python3 - <<'PY' || exit 1
import gzip, struct, zlib
def png(path, w, h, color, rows):
    def chunk(kind, data):
        c = struct.pack(">I", len(data)) + kind + data
        return c + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)
    raw = b"".join(b"\0" + bytes(r) for r in rows)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
d = "/usr/share/datasets/fashion-mnist/"
images = gzip.open(d + "t10k-images-idx3-ubyte.gz").read()[16:]
labels = gzip.open(d + "t10k-labels-idx1-ubyte.gz").read()[8:]
for i in range(20):
    img = images[i * 784:(i + 1) * 784]
    png("real/img-%03d.png" % i, 28, 28, 0, [img[y * 28:(y + 1) * 28] for y in range(28)])
open("labels.txt", "w").write("".join("%d\n" % labels[i] for i in range(20)))
png("big.png", 32, 32, 0, [[(x * y) % 256 for x in range(32)] for y in range(32)])
png("rgb.png", 28, 28, 2, [[v for x in range(28) for v in (x * 9, y * 9, 0)] for y in range(28)])
PY

tiny=(--limit 2000 --test-limit 200 --batch 32 --channels 8,16,16 --features 32)

# It learns: well above chance (10%) on the test images after 60 steps.
run "$GSCORE" train "${tiny[@]}" --steps 60 --log train.tsv -o tiny.st
expect_status 0 "train a tiny classifier"
check "a checkpoint" test -s tiny.st
check "a header and a row per step in the log" test "$(wc -l <train.tsv)" -eq 61
acc=$(awk -F'\t' 'NR == 1 {for (i = 1; i <= NF; i++) if ($i == "test_accuracy") c = i} NR == 61 {print $c}' train.tsv)
check "test accuracy above 40% after 60 steps (was $acc)" awk -v x="$acc" 'BEGIN {exit !(x > 0.4)}'
check "the trace reports the epoch's test accuracy" grep -q "epoch 1 (step 60): train loss .*; test accuracy" err
check "and the final test accuracy" grep -q "gscore: test accuracy [0-9.]*% (200 images)" err

# Determinism and exact resume: 20 steps, or 10 + resume + 10, give the same bytes.
"$GSCORE" train -q "${tiny[@]}" --steps 20 -o a.st
"$GSCORE" train -q "${tiny[@]}" --steps 20 -o b.st
check "same seed, same checkpoint" cmp -s a.st b.st
"$GSCORE" train -q "${tiny[@]}" --steps 10 --decay-steps 20 -o half.st
"$GSCORE" train -q --resume half.st --steps 20 -o resumed.st "${tiny[@]:0:4}"
check "20 steps = 10 + resume + 10, byte for byte" cmp -s a.st resumed.st
"$GSCORE" train -q "${tiny[@]}" --steps 20 --seed 2 -o c.st
check "another seed, another checkpoint" test "$(cmp -s a.st c.st; echo $?)" -ne 0

# Ctrl-C: finishes the step, saves, exits 130.
"$GSCORE" train "${tiny[@]}" --steps 1000000 -o stopped.st 2>err &
pid=$!
sleep 3
kill -INT $pid
wait $pid
status=$?
expect_status 130 "Ctrl-C during training"
check "Ctrl-C saves a checkpoint" test -s stopped.st
check "and says so" grep -q "interrupted: saved step" err
no_temp_files "after Ctrl-C"

# classify: a line per image; --expect adds the share of one class.
run "$GSCORE" classify tiny.st real/img-000.png real/img-001.png
expect_status 0 "classify two images"
check "one line per image: file, class, confidence" \
  test "$(grep -cE '^real/img-00[01]\.png	(T-shirt/top|Trouser|Pullover|Dress|Coat|Sandal|Shirt|Sneaker|Bag|Ankle boot)	[0-9]+%$' out)" -eq 2
run "$GSCORE" classify tiny.st --expect "ankle boot" real
expect_status 0 "classify a folder with --expect"
check "20 lines and a summary" test "$(wc -l <out)" -eq 21
check "the summary counts the expected class" grep -qE "^expected Ankle boot: [0-9]+ of 20 \([0-9.]+%\)$" out
correct=$(paste <(head -20 out | cut -f2) labels.txt | awk -F'\t' '
  BEGIN {split("T-shirt/top Trouser Pullover Dress Coat Sandal Shirt Sneaker Bag Ankle_boot", n, " ")}
  {gsub(" ", "_", $1); if ($1 == n[$2 + 1]) c++} END {print c + 0}')
check "most of the 20 real images labelled right ($correct)" test "$correct" -ge 8

# fid: the samples against the test set; the same images against themselves give 0.
run "$GSCORE" fid tiny.st --ref fashion-mnist:test --ref-limit 500 real
expect_status 0 "fid against the test set"
check "an FID line" grep -qE "^FID [0-9]+\.[0-9]{4} \(20 samples against 500 images of fashion-mnist:test; 32-d features\)$" out
check "the mean confidence" grep -qE "^mean confidence [0-9.]+%$" out
check "a histogram line per class" test "$(grep -cE '^[A-Za-z/ -]+ +[0-9]+ +[0-9. ]+%$' out)" -eq 10
check "counts that add up to the samples" test "$(awk 'NR > 2 {s += $(NF - 1)} END {print s}' out)" -eq 20
check "a warning about too few samples for the features" grep -q "warning: 20 samples for 32-d features" err
run "$GSCORE" fid tiny.st --ref real real/img-0*.png
check "the same images against themselves: FID 0" grep -q "^FID 0.0000 " out

# Bad input: one line each.
if [ -n "${GDIFFUSE:-}" ]; then
  "$GDIFFUSE" train -q --limit 16 --batch 2 --steps 1 --channels 8 --time-dim 8 -o ddpm.st
  run "$GSCORE" classify ddpm.st real/img-000.png
  expect_error 1 "ddpm.st: not an image classifier: its format is 'gen-unet', expected 'gen-classifier'" \
    "a diffusion checkpoint"
fi
run "$GSCORE" classify real/img-000.png real/img-001.png
expect_error 1 "real/img-000.png: not a valid safetensors file" "a PNG as the checkpoint"
head -c 100 real/img-000.png >cut.png
run "$GSCORE" classify tiny.st real/img-001.png cut.png
expect_error 1 "cut.png: " "a corrupt PNG"
check "and nothing printed for the images before it" test ! -s out
run "$GSCORE" classify tiny.st big.png
expect_error 1 "big.png: the image is 32x32 gray; the classifier wants 28x28 gray$" "a PNG of the wrong size"
run "$GSCORE" fid tiny.st real/img-000.png rgb.png
expect_error 1 "rgb.png: the image is 28x28 RGB; the classifier wants 28x28 gray$" "an RGB PNG"
run "$GSCORE" classify tiny.st --expect hat real/img-000.png
expect_error 2 "--expect 'hat': not a class of this classifier; the classes are: T-shirt/top, Trouser" \
  "an unknown --expect class"
run "$GSCORE" fid tiny.st real/img-000.png
expect_error 2 "the Fréchet distance needs at least 2 sample images" "one sample"
run "$GSCORE" classify tiny.st missing.png
expect_error 1 "missing.png: " "a missing image"
run "$GSCORE" train --data real -o x.st
expect_error 1 "real: has no labels: training needs labelled images" "unlabelled training images"
run "$GSCORE" train "${tiny[@]}" --channels 8,x -o x.st
expect_error 2 "--channels '8,x': expected numbers like 32,64,128" "bad --channels"
run "$GSCORE" train -q --resume tiny.st --steps 100 --data fashion-mnist:test -o x.st
expect_error 1 "fashion-mnist:test: not the images tiny.st was trained on" "resume on other data"
"$GSCORE" train -q "${tiny[@]}" --steps 2 --no-optimizer -o weights.st
run "$GSCORE" train --resume weights.st --steps 10 -o x.st
expect_error 1 "weights.st: has no training state to resume from" "resume without optimizer state"
check "no stray checkpoints" test ! -e x.st
no_temp_files "after the errors"
finish
