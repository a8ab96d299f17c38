import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { escapingLink, listLinks, type Link } from '../../src/store/links.js'

const P = '/nix/store/00000000000000000000000000000000-p'
const link = (path: string, target: string): Link => ({ path: `${P}/${path}`, target })

describe('escapingLink', () => {
  it.each([
    [
      'a plain relative link inside the path',
      [link('bin/readme', '../share/doc/README')],
      undefined
    ],
    ['a link to the store folder itself', [link('bin/store', '../..')], undefined],
    ['an absolute link to the host (allowed, as in Nix)', [link('bin/sh', '/bin/sh')], undefined],
    ['a lexical escape', [link('bin/x', '../../../etc/passwd')], '/nix/etc/passwd'],
    [
      'an escape through an absolute link',
      [link('bin/up', '/elsewhere'), link('bin/rel', 'up/../../../etc')],
      '/etc'
    ],
    [
      'an escape through a relative link to the store root',
      [link('top', '..'), link('x', 'top/../etc')],
      '/nix/etc'
    ],
    ['a loop leads nowhere', [link('a', 'b'), link('b', 'a'), link('c', 'a/x')], undefined],
    [
      'a link through a link that stays inside',
      [link('share/doc/up', '..'), link('bin/ok', '../share/doc/up/doc/README')],
      undefined
    ]
  ] as const)('%s', (_, links, resolved) => {
    expect(escapingLink(links, undefined)?.resolved).toBe(resolved)
  })
})

describe('listLinks', () => {
  it('finds every link at any depth with its target, following none', async () => {
    const root = mkdtempSync(join(tmpdir(), 'nsc-links-'))
    try {
      const p = join(root, '00000000000000000000000000000000-p')
      mkdirSync(join(p, 'share', 'doc'), { recursive: true })
      writeFileSync(join(p, 'share', 'doc', 'README'), 'x')
      symlinkSync('../share/doc/README', join(p, 'share', 'readme'))
      symlinkSync('/bin/sh', join(p, 'sh'))
      symlinkSync('share', join(p, 'to-dir')) // were it followed, share's links would show twice
      symlinkSync('loop-b', join(p, 'loop-a'))
      symlinkSync('loop-a', join(p, 'loop-b'))
      symlinkSync('../../../etc', join(p, 'share', 'doc', 'up'))
      const found = (await listLinks(root)).sort((a, b) => a.path.localeCompare(b.path))
      expect(found).toEqual(
        [
          link('loop-a', 'loop-b'),
          link('loop-b', 'loop-a'),
          link('sh', '/bin/sh'),
          link('share/doc/up', '../../../etc'),
          link('share/readme', '../share/doc/README'),
          link('to-dir', 'share')
        ].sort((a, b) => a.path.localeCompare(b.path))
      )
    } finally {
      rmSync(root, { recursive: true })
    }
  })
})
