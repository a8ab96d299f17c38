# Test rig only: a tiny offline package set standing in for <nixpkgs>, enough for
# `nix-shell -p <attrs>`. Builders get no PATH, so each script sets its own.
{ ... }:
let
  system = builtins.currentSystem;
  mkDrv = name: script: attrs:
    derivation ({
      inherit name system;
      builder = "/bin/sh";
      args = [ "-c" ("PATH=/usr/bin:/bin; set -e; " + script) ];
    } // attrs);

  # What nix-shell sources: puts every build input's bin/ on PATH.
  stdenv = mkDrv "stdenv" ''
    mkdir -p $out
    cat > $out/setup <<'SETUP'
    for _rig_dep in $buildInputs $nativeBuildInputs; do
      if [ -d "$_rig_dep/bin" ]; then PATH="$_rig_dep/bin:$PATH"; fi
    done
    export PATH
    SETUP
  '' { };

  runCommand = name: env: script: mkDrv name ("mkdir -p $out; " + script) ({ inherit stdenv; } // env);

  # A program whose output refers to another store path (a run-time reference).
  tool = name: deps: body: mkDrv name ''
    mkdir -p $out/bin
    printf '#!/bin/sh\n%s\n' '${body}' > $out/bin/${name}
    chmod +x $out/bin/${name}
  '' { inherit deps; };

  pkgs = (rec {
    inherit pkgs stdenv runCommand;
    runCommandCC = runCommand;

    # nix-shell runs this bash; a store path whose bin/bash is the host's bash.
    bashInteractive = mkDrv "bash-interactive" ''
      mkdir -p $out/bin
      ln -s /bin/bash $out/bin/bash
    '' { };

    greeting = mkDrv "greeting-1.0" ''
      mkdir -p $out/share
      echo "Hello, world!" > $out/share/greeting
    '' { };

    hello = tool "hello" [ greeting ] "cat ${greeting}/share/greeting";

    cowsay = tool "cowsay" [ hello ] ''echo " < $*${"$"}{*:+ }$(${hello}/bin/hello) >"'';

    figlet = tool "figlet" [ ] ''echo "FIGLET $*"'';

    # Two outputs; dev refers to out.
    multi = mkDrv "multi-2.0" ''
      mkdir -p $out/lib $dev/include
      echo "int multi(void);" > $dev/include/multi.h
      echo "libmulti" > $out/lib/libmulti.txt
      echo "${"$"}out" > $dev/include/multi-prefix
    '' { outputs = [ "out" "dev" ]; };

    # A few MB of real machine code, so archives have realistic sizes.
    # Debian's 2.8 ships libnix*.so; newer Debian builds link nix statically.
    bigbin = mkDrv "bigbin-1.0" ''
      mkdir -p $out/lib $out/bin
      for f in /usr/lib/nix/*.so; do if [ -e "$f" ]; then cp "$f" $out/lib/; fi; done
      cp /usr/bin/nix $out/lib/nix.bin
      printf '#!/bin/sh\necho bigbin\n' > $out/bin/bigbin
      chmod +x $out/bin/bigbin
    '' { };

    # A few MB of its own, and bigbin's at run time: a pack made for bigapp holds
    # both, and a set that needs bigbin alone needs only part of it.
    bigapp = mkDrv "bigapp-1.0" ''
      mkdir -p $out/bin $out/lib
      cp ${bigbin}/lib/* $out/lib/
      printf '#!/bin/sh\nexec ${bigbin}/bin/bigbin "$@"\n' > $out/bin/bigapp
      chmod +x $out/bin/bigapp
    '' { };

    # Content-addressed (needs the ca-derivations experimental feature): fills
    # the Realisations tables.
    caHello = mkDrv "ca-hello" ''
      mkdir -p $out/bin
      printf '#!/bin/sh\ncat ${greeting}/share/greeting\n' > $out/bin/ca-hello
      chmod +x $out/bin/ca-hello
    '' { __contentAddressed = true; outputHashMode = "recursive"; outputHashAlgo = "sha256"; };

    # Content-addressed, using caHello while it builds but keeping no reference to
    # it: Nix records that in RealisationsRefs (Realisations -> Realisations).
    caUser = mkDrv "ca-user" ''
      mkdir -p $out/share
      ${caHello}/bin/ca-hello > $out/share/msg
    '' { __contentAddressed = true; outputHashMode = "recursive"; outputHashAlgo = "sha256"; };

    # Links: one to a folder of its own path (a loop for anything that follows
    # links), one to the host outside the store, like real packages have.
    linky = mkDrv "linky-1.0" ''
      mkdir -p $out/share/doc $out/bin
      echo doc > $out/share/doc/README
      ln -s .. $out/share/doc/up
      ln -s ../share/doc/README $out/bin/readme
      ln -s /bin/sh $out/bin/sh
    '' { };
  }
  # filler1 … filler12: small distinct packages, for tests that need many packs.
  // builtins.listToAttrs (builtins.genList (i: {
    name = "filler${toString (i + 1)}";
    value = mkDrv "filler-${toString (i + 1)}" ''
      mkdir -p $out/share
      echo "filler ${toString (i + 1)}" > $out/share/filler
    '' { };
  }) 12));
in
pkgs
