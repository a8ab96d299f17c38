// The Actions cache's REST API (list and delete), which @actions/cache does not
// cover: through @actions/github's Octokit, which honours GITHUB_API_URL (GHES,
// the test rig) and pages for us. Needs a token with `actions: write`.
import { getOctokit } from '@actions/github'
import { CacheError } from '../errors.js'
import type { Stored } from './types.js'

export interface ApiAccess {
  token: string
  /** `owner/name`. */
  repository: string
  /** Only this ref's entries are listed and deleted. */
  ref: string
}

export class CacheApi {
  private readonly octokit: ReturnType<typeof getOctokit>
  private readonly owner: string
  private readonly repo: string

  constructor(private readonly access: ApiAccess) {
    const [owner, repo] = access.repository.split('/')
    if (!owner || !repo)
      throw new CacheError(`GITHUB_REPOSITORY is \`${access.repository}\`, not owner/name`)
    this.owner = owner
    this.repo = repo
    this.octokit = getOctokit(access.token)
  }

  /** This ref's entries; `modified` is the later of creation and last access. */
  async list(): Promise<Stored[]> {
    return this.guard('listing', async () => {
      const all = await this.octokit.paginate(this.octokit.rest.actions.getActionsCacheList, {
        owner: this.owner,
        repo: this.repo,
        ref: this.access.ref,
        per_page: 100
      })
      return all.map(c => {
        const created = Date.parse(c.created_at ?? '') || 0
        const accessed = Date.parse(c.last_accessed_at ?? '') || 0
        return {
          key: c.key ?? '',
          bytes: c.size_in_bytes ?? 0,
          modified: Math.max(created, accessed),
          created
        }
      })
    })
  }

  /** Every version of `key` on this ref; one already gone is fine. */
  async remove(key: string): Promise<void> {
    await this.guard(`deleting ${key}`, async () => {
      try {
        await this.octokit.rest.actions.deleteActionsCacheByKey({
          owner: this.owner,
          repo: this.repo,
          key,
          ref: this.access.ref
        })
      } catch (e) {
        if ((e as { status?: number }).status !== 404) throw e
      }
    })
  }

  private async guard<T>(what: string, f: () => Promise<T>): Promise<T> {
    try {
      return await f()
    } catch (e) {
      const status = (e as { status?: number }).status
      const hint =
        status === 403 || status === 401 ? ': the `token` needs `permissions: actions: write`' : ''
      throw new CacheError(
        `GitHub's cache API, ${what} in ${this.access.repository}: ${e instanceof Error ? e.message : String(e)}${hint}`
      )
    }
  }
}
