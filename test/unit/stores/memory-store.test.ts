import { MemoryStore } from '../../../src/stores/memory/memory-store.js';
import { storeContract } from '../../helpers/store-contract.js';

storeContract('memory', async () => new MemoryStore());
