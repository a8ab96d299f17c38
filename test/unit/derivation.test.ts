import { describe, expect, it } from 'vitest'
import {
  BadDerivationError,
  downstreamPlaceholder,
  outputPathName,
  parseDerivation
} from '../../src/packages/derivation.js'

// Written by Nix 2.26 for `nix-shell -p hello caUser multi` in the rig, with
// ca-derivations on: caUser's output is a placeholder in buildInputs.
const SHELL =
  'Derive([("out","","","")],[("/nix/store/4q3hzlqf36gf8h8cznip0xlwghs38djh-hello.drv",["out"]),' +
  '("/nix/store/k20g756paihddhd2md6h0n4gy1n8yi67-multi-2.0.drv",["out"]),' +
  '("/nix/store/ljw6v4lj77lmb7apny66imispn84yia4-ca-user.drv",["out"]),' +
  '("/nix/store/rjciw86qslmhmdah7i182im6jsh6v5ls-stdenv.drv",["out"])],[],"x86_64-linux","/bin/sh",' +
  '["-c","PATH=/usr/bin:/bin; set -e; mkdir -p $out; "],[("buildInputs","/nix/store/3savpzqj85n4q1hnfyacmrdig1p5dx6g-hello ' +
  '/1j057hlgzfh2nhkaifgy03zl8f7b2vbzkiydl2brxs0vqq31cchw /nix/store/lmawc1dpclz5ydp4bdcx2f99m7hn0aiy-multi-2.0"),' +
  '("builder","/bin/sh"),("name","shell"),("out",""),("stdenv","/nix/store/gvww0113jd39sx11g9pryf438c2r67y9-stdenv"),' +
  '("system","x86_64-linux")])'

describe('parseDerivation', () => {
  it('reads outputs, inputs and the environment', () => {
    const d = parseDerivation(SHELL)
    expect([...d.outputs]).toEqual([['out', '']])
    expect(d.inputDrvs.get('/nix/store/k20g756paihddhd2md6h0n4gy1n8yi67-multi-2.0.drv')).toEqual([
      'out'
    ])
    expect(d.inputDrvs.size).toBe(4)
    expect(d.inputSrcs).toEqual([])
    expect(d.env.get('stdenv')).toBe('/nix/store/gvww0113jd39sx11g9pryf438c2r67y9-stdenv')
    expect(d.env.get('buildInputs')!.split(' ')).toHaveLength(3)
  })

  it('undoes the escapes Nix writes in strings', () => {
    const d = parseDerivation(
      'Derive([("out","/nix/store/a-x","","")],[],["/nix/store/b-src"],"s","b",[],[("k","a\\"b\\\\c\\nd\\te")])'
    )
    expect(d.env.get('k')).toBe('a"b\\c\nd\te')
    expect(d.inputSrcs).toEqual(['/nix/store/b-src'])
  })

  it.each([
    ['', 'no `Derive(`'],
    ['Derive([],[],[],"s","b",[])', 'fields'],
    ['Derive([("out")],[],[],"s","b",[],[])', 'bad outputs entry'],
    ['Derive([],[],[],"s","b",[],[("k","v)])', 'unterminated'],
    ['Derive([],[],[],"s","b",[],[]) x', 'text after']
  ])('refuses %j', (text, why) => {
    expect(() => parseDerivation(text)).toThrow(BadDerivationError)
    expect(() => parseDerivation(text)).toThrow(why)
  })
})

describe('downstreamPlaceholder', () => {
  it("is the text Nix put in the shell's buildInputs for a CA input", () => {
    expect(
      downstreamPlaceholder('/nix/store/ljw6v4lj77lmb7apny66imispn84yia4-ca-user.drv', 'out')
    ).toBe('/1j057hlgzfh2nhkaifgy03zl8f7b2vbzkiydl2brxs0vqq31cchw')
  })

  it('names outputs as Nix does', () => {
    expect(outputPathName('multi-2.0', 'out')).toBe('multi-2.0')
    expect(outputPathName('multi-2.0', 'dev')).toBe('multi-2.0-dev')
  })
})
