#!/usr/bin/env bash
# make demo: the three families at work, in about five minutes on two cores.
# Text: trains a tokenizer on Debian's fortunes, shows text becoming tokens and coming back
# exactly, trains a small GPT on the tokens (the loss falls as you watch), samples from it and
# shows what temperature does. Images: the forward diffusion process on a picture; a GAN trained
# here for a minute or two, whose samples are garments; and a classifier, trained here too,
# saying what each sample shows: discriminative beside generative. Everything it writes goes to
# out/demo/; it ends by listing the pictures.
set -euo pipefail
build=${1:-build}
here=$(cd "$(dirname "$0")/.." && pwd)
gtok="$here/$build/tools/gtok"
out="$here/out/demo"
mkdir -p "$out"
cd "$out"
if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
say() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }

say "1. Train a BPE tokenizer on the fortunes corpus (Debian's fortunes package)"
cat /usr/share/games/fortunes/*.u8 >fortunes.txt
echo "\$ gtok train --vocab-size 2000 fortunes.txt -o tok.model"
"$gtok" train --vocab-size 2000 fortunes.txt -o tok.model

say "2. A sentence becomes pieces, and each piece has an id"
sentence="Unbelievable: the computer understood everything."
echo "\$ gtok show -m tok.model \"$sentence\""
"$gtok" show -m tok.model "$sentence"
echo "\$ gtok show -m tok.model --ids \"$sentence\""
"$gtok" show -m tok.model --ids "$sentence"

say "3. Text to ids and back, exactly (the newline is a token too)"
fortune=$(awk 'BEGIN { RS = "%\n" } NR == 42' fortunes.txt)
printf '%s\n' "$fortune" | tee fortune.txt
echo "\$ gtok encode -m tok.model fortune.txt"
"$gtok" encode -m tok.model fortune.txt | tee fortune.ids
echo "\$ gtok decode -m tok.model fortune.ids | cmp - fortune.txt"
"$gtok" decode -m tok.model fortune.ids | cmp - fortune.txt && echo "identical, byte for byte"

say "4. The whole corpus round-trips too, and here is how much each tokenizer compresses it"
"$gtok" encode -q -m tok.model --binary fortunes.txt -o fortunes.ids
"$gtok" decode -m tok.model fortunes.ids | cmp - fortunes.txt && echo "fortunes.txt: decode(encode(x)) == x"
"$gtok" train -q --model-type char fortunes.txt -o char.model
echo "\$ gtok count -m char.model fortunes.txt; gtok count -m tok.model fortunes.txt"
{
  "$gtok" count -m char.model fortunes.txt | sed '2s/^fortunes.txt/char model/'
  "$gtok" count -m tok.model fortunes.txt | sed -n '2s/^fortunes.txt/bpe 2000/p'
} | column -t -s $'\t'
echo
echo "Fewer tokens per character means a language model sees more text in the same context."

gtrain="$here/$build/tools/gtrain"
gsample="$here/$build/tools/gsample"
say "5. Train a small GPT to predict the next token (about two minutes; watch the loss fall)"
echo "\$ gtrain --tokenizer tok.model fortunes.ids --steps ${DEMO_STEPS:-1500} --log train.tsv --plot lm-loss.png -o lm.st"
"$gtrain" --tokenizer tok.model fortunes.ids --steps "${DEMO_STEPS:-1500}" --log train.tsv --plot lm-loss.png -o lm.st

say "6. The model's next-token distribution, and how temperature reshapes it"
echo "\$ gsample lm.st --prompt \"The meaning of life is\" --probs 6 --temperature 0.5,1,2"
"$gsample" lm.st --prompt "The meaning of life is" --probs 6 --temperature 0.5,1,2

say "7. Samples: same seed, same text; lower temperature, safer words"
for t in 0.7 1.0; do
  echo "\$ gsample lm.st --prompt \"Q:\" -n 60 --temperature $t --seed 7"
  "$gsample" lm.st --prompt "Q:" -n 60 --temperature "$t" --seed 7
  echo
done
gdiffuse="$here/$build/tools/gdiffuse"
ggan="$here/$build/tools/ggan"
gscore="$here/$build/tools/gscore"
say "8. Diffusion's forward process: a picture buried in noise, step by step"
echo "\$ gdiffuse noise data/ankle-boot.png --strip 0,5,10,25,50,100 --steps 100 --scale 4 --labels -o strip.png"
"$gdiffuse" noise "$here/data/ankle-boot.png" --strip 0,5,10,25,50,100 --steps 100 --scale 4 --labels -o strip.png
echo "A denoiser learns to undo each step (gdiffuse train); sampling runs the strip backwards."

say "9. A GAN: the forger (generator) against the detective (discriminator), on Fashion-MNIST"
echo "D(x) is the detective's verdict on real images, D(G(z)) on forgeries; they meet near 1/2."
echo "\$ ggan train --g-channels 128 --d-channels 32 --lr 5e-4 --steps ${DEMO_GAN_STEPS:-3000} --plot gan-loss.png -o gan.st"
"$ggan" train --g-channels 128 --d-channels 32 --lr 5e-4 --steps "${DEMO_GAN_STEPS:-3000}" --plot gan-loss.png -o gan.st
echo "\$ ggan sample gan.st --seed 7 -n 64 --grid 8x8 --scale 3 -o gan-samples.png"
"$ggan" sample gan.st --seed 7 -n 64 --grid 8x8 --scale 3 -o gan-samples.png
"$ggan" sample gan.st --seed 7 -n 8 -o "forgery-%d.png"

say "10. A classifier (the discriminative counterpart) judges the forgeries"
echo "\$ gscore train --steps ${DEMO_CLASSIFIER_STEPS:-600} -o classifier.st"
"$gscore" train --steps "${DEMO_CLASSIFIER_STEPS:-600}" -o classifier.st
echo "\$ gscore classify classifier.st forgery-*.png   # the first 8 of gan-samples.png's top row"
"$gscore" classify classifier.st forgery-?.png | column -t -s $'\t'

say "Pictures (open them: any image viewer)"
for picture in strip.png gan-samples.png gan-loss.png lm-loss.png; do
  printf '  %s\n' "$out/$picture"
done
echo "  forward diffusion, 64 forgeries (the first row is forgery-0..7.png), the GAN's losses, the GPT's loss"
echo
echo "Files are in $out (train.tsv has the GPT's loss per step: gnuplot or awk it)."
