#!/usr/bin/env bash
# Re-fetch the scripts the built book serves itself, so that its pages load nothing from the
# network: MathJax (typesets the maths), RequireJS and the ipywidgets HTML manager (render the
# widgets whose state a page embeds). Each comes unchanged from its npm package at the version
# pinned below; NOTICE.md says where every file comes from and under which licence.
# Needs npm and access to the npm registry. Run from anywhere; bump a version here to upgrade.
set -euo pipefail

MATHJAX=3.2.2
REQUIREJS=2.3.8
HTML_MANAGER=1.0.15   # the @jupyter-widgets/html-manager that goes with ipywidgets 8.1

here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

unpack() {  # unpack NAME@VERSION into $work/NAME-dir and print that directory
    local spec=$1 dir="$work/$(echo "$1" | tr '/@' '__')"
    mkdir -p "$dir"
    (cd "$work" && npm pack --silent "$spec" >"$dir.name")
    tar -xzf "$work/$(cat "$dir.name")" -C "$dir"
    echo "$dir/package"
}

mathjax=$(unpack "mathjax@$MATHJAX")
requirejs=$(unpack "requirejs@$REQUIREJS")
manager=$(unpack "@jupyter-widgets/html-manager@$HTML_MANAGER")

rm -rf "$here/mathjax" "$here/requirejs" "$here/html-manager"
mkdir -p "$here/mathjax/output/chtml/fonts" "$here/requirejs" "$here/html-manager"

# MathJax: the one combined component with every TeX extension (no requests for extensions at
# run time) and the woff-v2 fonts its CommonHTML output loads.
cp "$mathjax/es5/tex-chtml-full.js" "$mathjax/LICENSE" "$here/mathjax/"
cp -r "$mathjax/es5/output/chtml/fonts/woff-v2" "$here/mathjax/output/chtml/fonts/"

cp "$requirejs/require.js" "$here/requirejs/"

# The widget manager's AMD bundle, and the Font Awesome woff2 files its CSS loads from next to it.
cp "$manager/dist/embed-amd.js" "$here/html-manager/"
for font in "$manager"/dist/*.woff2; do cp "$font" "$here/html-manager/"; done

for package in "$mathjax" "$requirejs" "$manager"; do
    name=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["name"])' \
        "$package/package.json")
    version=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' \
        "$package/package.json")
    echo "fetched $name $version"
done
du -sh "$here"
