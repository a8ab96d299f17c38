import { describe, expect, it } from 'vitest'
import { escapingLink, type Link } from '../../src/store/links.js'

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
