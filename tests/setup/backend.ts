// Every test file runs on the same TensorFlow.js backend the CLI picks on this machine.
import { initBackend } from '../../models/backend.ts';

await initBackend('auto');
