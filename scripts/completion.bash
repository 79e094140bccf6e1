# bash completion for gen's tools: gtok, gtrain, gsample, gdiffuse, ggan and gscore.
# Installed once per tool under /usr/share/bash-completion/completions/. The subcommands and
# options are read from the tool's own --help (and the subcommand's), so they never go stale;
# the values of the options that take a word from a fixed list are listed here.

# The words of TOOL [SUBCOMMAND] --help: every option name, and the subcommands of a tool alone.
_gen_help_words() {
  "$@" --help 2>/dev/null | awk '
    /^Subcommands:/ { commands = 1; next }
    /^[^ ]/ { commands = 0 }
    commands && /^  [a-z]/ { print $1; next }
    /^  -/ {
      n = split($1, names, ",")
      for (i = 1; i <= n; i++) if (names[i] ~ /^-/) print names[i]
    }'
}

_gen_complete() {
  local tool=$1 current=${COMP_WORDS[COMP_CWORD]} previous=${COMP_WORDS[COMP_CWORD-1]}
  local command=() word i
  COMPREPLY=()
  # The subcommand, if the tool has them and one is on the line already.
  local commands
  commands=$(_gen_help_words "$tool" | grep -v '^-')
  if [ -n "$commands" ]; then
    for ((i = 1; i < COMP_CWORD; i++)); do
      word=${COMP_WORDS[i]}
      if [[ $word != -* ]] && grep -qx -- "$word" <<<"$commands"; then
        command=("$word")
        break
      fi
    done
    if [ ${#command[@]} -eq 0 ] && [[ $current != -* ]]; then
      mapfile -t COMPREPLY < <(compgen -W "$commands help" -- "$current")
      return
    fi
  fi
  # The values of options that take a word from a list.
  local values=""
  case $previous in
    --model-type) values="bpe unigram char word" ;;
    --encoder) values="native sentencepiece" ;;
    --loss) values="bce hinge wgan-gp" ;;
    --schedule) values="linear cosine" ;;
    --sampler) values="ddim ddpm dpm++2m" ;;
    --data | --ref) values="fashion-mnist fashion-mnist:test fashion-mnist:train" ;;
    --prompt | -p | --expect | --negative-prompt)
      [ "$tool" = gsample ] || values="all list t-shirt trouser pullover dress coat sandal shirt sneaker bag ankle-boot" ;;
  esac
  if [ -n "$values" ]; then
    mapfile -t COMPREPLY < <(compgen -W "$values" -- "$current")
    [[ $previous == --data || $previous == --ref ]] && COMPREPLY+=($(compgen -f -- "$current"))
    return
  fi
  if [[ $current == -* ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$(_gen_help_words "$tool" "${command[@]}" | grep '^-')" -- "$current")
    return
  fi
  # Anything else is a file (checkpoints, models, text, images, ids).
  mapfile -t COMPREPLY < <(compgen -f -- "$current")
}

for _gen_tool in gtok gtrain gsample gdiffuse ggan gscore; do
  complete -o filenames -F _gen_complete "$_gen_tool"
done
unset _gen_tool
