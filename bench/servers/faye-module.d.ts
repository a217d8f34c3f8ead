// The part of Faye's API the reference server uses; Faye ships no types.
declare module 'faye' {
  import type { Server } from 'node:http';

  const faye: {
    NodeAdapter: new (options: { mount: string; timeout?: number }) => { attach(server: Server): void };
  };
  export default faye;
}
